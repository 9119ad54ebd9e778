// `rondo bench dpo`: one DPO update exactly as the peer harness measures PyTorch + TRL
// (../shared/bench/peers/dpo_step.py): 8 rows [chosen_0..3, rejected_0..3] of random tokens where
// pair i shares its prompt, reference forward (no backward state: it runs first in the same
// workspace, whose activations the policy forward then overwrites), policy forward + backward,
// sigmoid loss β = 0.1 on summed response log-probs, clip 1.0, AdamW lr 1e-6 betas (0.9, 0.999)
// eps 1e-8 weight decay 0. Warm-up steps, then medians; one JSON line with the peer's key names.
//
// FLOPs per step (the peer's formula): 2·P·T · ((6 + 2)·N + (12 + 4)·L·T·A), i.e. policy forward
// + backward plus the reference forward. MFU is over the sgemm rate measured at start-up, as in
// TrainBench.swift.
//
// With `lora`, the policy is the base plus a fresh PEFT-initialised adapter (B = 0), the reference is
// the same base with the adapter off (no copy), and only the adapter has gradients and AdamW state;
// the base's weight-gradient products are skipped, so FLOPs per token are 2·P fewer.

import Foundation
import Kernels
import Model

/// Options of a DPO-step benchmark.
public struct DPOBenchOptions: Sendable {
    public var run: StepBenchRun
    public var pairs: Int = 4
    public var promptLen: Int = 64
    public var responseLen: Int = 192
    /// Train a LoRA adapter of this shape instead of every parameter.
    public var lora: LoRAConfig?
    public init(run: StepBenchRun) { self.run = run }
}

public enum DPOBench {
    /// Runs the benchmark and returns the JSON line.
    public static func run(_ o: DPOBenchOptions, progress: (String) -> Void = { _ in }) throws -> String {
        guard o.pairs >= 1, o.promptLen >= 1, o.responseLen >= 1 else {
            throw JobError("--pairs, --prompt-len and --response-len ≥ 1 are required")
        }
        let (config, params) = try o.run.start("bench dpo")
        let sgemm = measuredSgemmGFLOPS(config: config, rows: 2 * o.pairs * (o.promptLen + o.responseLen),
                                        threads: o.run.threads)
        let P = o.pairs, Tp = o.promptLen, Tr = o.responseLen, T = Tp + Tr
        let policy = LlamaModel(config: config, parameters: params)
        let adapter = o.lora.map { LoRAAdapter(config: $0, model: config) }
        adapter?.initialize(seed: 0)
        // TRL: a frozen copy of the policy; with a LoRA (TRL + PEFT), the same base with the adapter off.
        let reference = adapter == nil ? LlamaModel(config: config, parameters: params.clone()) : policy
        let ws = LlamaWorkspace(config: config, maxBatch: 2 * P, maxSeqLen: T)
        let lora = adapter.map { LoRAActivations(adapter: $0, maxRows: ws.maxRows) }
        let optimizer = AdamW(layout: adapter?.layout ?? policy.layout, config: AdamWConfig(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0))
        let trainer = Trainer(model: policy, adapter: adapter, optimizer: optimizer,
                              schedule: LRSchedule(kind: .constant, peak: 1e-6, totalSteps: o.run.totalSteps), maxGradNorm: 1)
        let loss = DPOLossConfig(lossType: .sigmoid, beta: 0.1)

        // Random ids in [3, V): prompt [P, Tp], chosen [P, Tr], rejected [P, Tr].
        let rng = Philox(seed: 0, stream: 0xD90)
        var draw: UInt64 = 0
        func ids(_ n: Int) -> [Int32] {
            (0..<n).map { _ in draw += 1; return Int32(3 + Int(rng.block(draw).0 % UInt32(max(1, config.vocabSize - 3)))) }
        }
        let prompts = (0..<P).map { _ in ids(Tp) }, chosen = (0..<P).map { _ in ids(Tr) }, rejected = (0..<P).map { _ in ids(Tr) }
        let rows = (0..<P).map { prompts[$0] + chosen[$0] } + (0..<P).map { prompts[$0] + rejected[$0] }
        let batch = TokenBatch(rows: rows, pad: 0, scoreFrom: Array(repeating: Tp, count: 2 * P))

        var phases: [String: [Double]] = [:], total: [Double] = [], losses: [Float] = []
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        for step in 0..<o.run.totalSteps {
            var t = [now()]
            var stepLoss: Float = 0
            _ = try trainer.step(microBatches: 1, context: "bench step \(step + 1)") { _ in
                let ref = DPOLoss.sequenceLogps(output: try reference.forward(batch, workspace: ws), batch: batch).sums
                t.append(now())
                let out = try policy.forward(batch, workspace: ws, lora: lora)
                var metrics = DPOMetrics()
                let l = DPOLoss.compute(policyOutput: out, batch: batch, referenceLogps: ref, config: loss, metrics: &metrics)
                t.append(now())
                l.outputGradient.withUnsafeBufferPointer {
                    trainer.backward(batch, outputGradient: $0, workspace: ws, lora: lora)
                }
                t.append(now())
                stepLoss = l.loss
                return l.loss
            }
            t.append(now())
            losses.append(stepLoss)
            let ms = (1..<t.count).map { Double(t[$0] - t[$0 - 1]) / 1e6 }
            if step >= o.run.warmup {
                for (k, v) in zip(["ref_forward", "policy_forward", "backward", "optimizer"], ms) { phases[k, default: []].append(v) }
                total.append(ms.reduce(0, +))
            }
            progress("\(o.run.stepLabel(step)): \(String(format: "%.1f", ms.reduce(0, +))) ms, loss \(stepLoss)")
        }
        let tokens = 2 * P * T
        let perToken = TrainBench.flopsPerToken(config, seqLen: T)  // 6N + 12·L·T·A
        let weightGradient = adapter == nil ? 0 : 2 * TrainBench.flopsPerToken(config, seqLen: 0) / 6  // 2N, skipped with LoRA
        let flops = Double(tokens) * (perToken * 4 / 3 - weightGradient)  // + the reference forward, 2N + 4·L·T·A
        let ms = median(total)
        let gflops = flops / (ms / 1e3) / 1e9
        let phaseJSON = ["policy_forward", "ref_forward", "backward", "optimizer"]
            .map { "\"\($0)\": \(formatFixed(median(phases[$0]!)))" }.joined(separator: ", ")
        let fields: [(String, String)] = [
            ("bench", "\"dpo\""), ("model", jsonString(o.run.source.path)),
            ("pairs", "\(P)"), ("seq_len", "\(T)"), ("prompt_len", "\(Tp)"), ("response_len", "\(Tr)"), ("beta", "0.1"),
            ("warmup", "\(o.run.warmup)"), ("steps", "\(o.run.steps)"), ("threads", "\(o.run.threads)"),
            ("ms_per_step", formatFixed(ms)), ("pairs_per_s", formatFixed(Double(P) / (ms / 1e3), 3)),
            ("tokens_per_s", formatFixed(Double(tokens) / (ms / 1e3))),
            ("phase_ms_median", "{\(phaseJSON)}"),
            ("ms_per_step_min_max", "[\(formatFixed(total.min()!)), \(formatFixed(total.max()!))]"),
            ("flops_per_step", formatFixed(flops)), ("achieved_gflops_median", formatSignificant(gflops)),
            ("mfu", formatSignificant(gflops / sgemm)),
            ("sgemm_gflop_per_s", formatFixed(sgemm)), ("sgemm_core", jsonString(MachineRates.blasCoreName)), ("n_params", "\(params.count)"),
            ("lora", adapter.map { a in
                "{\"r\": \(a.config.r), \"lora_alpha\": \(jsonNumber(a.config.alpha)), \"use_rslora\": \(a.config.useRSLoRA), "
                    + "\"target_modules\": [\(a.config.targets.map { jsonString($0.rawValue) }.joined(separator: ", "))]}"
            } ?? "null"),
            ("trainable_params", "\(adapter?.weights.count ?? params.count)"),
            ("loss_first_last", "[\(jsonNumber(losses.first!)), \(jsonNumber(losses.last!))]"),
            ("peak_rss_mib", formatFixed(peakRSSMiB())),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }
}
