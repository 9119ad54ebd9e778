// `rondo bench train`: the SFT training step on random tokens — forward, backward, global-norm
// clip (1.0) and AdamW (lr 3e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on every tensor, as
// the peer's `torch.optim.AdamW(model.parameters())`) — measured as the peer harness
// (../shared/bench/peers/train_step.py) measures PyTorch: warm-up steps, then medians over
// timed steps; one JSON line with the peer's key names.
//
// FLOPs per token (TRL's `compute_flops_per_token`, PaLM convention): 6·N + 12·L·T·A, where N
// counts every matmul weight including the LM head but not the input embedding.
// MFU divides the achieved FLOP/s by the sgemm rate measured at start-up on this machine
// (`measuredSgemmGFLOPS`: OpenBLAS on the bench's threads at one layer's product shapes with
// min(batch · seq, 512) rows), printed as sgemm_gflop_per_s.

import Foundation
import Kernels
import Model

/// Options of a training benchmark.
public struct TrainBenchOptions: Sendable {
    public var run: StepBenchRun
    public var batch: Int = 8
    public var seqLen: Int = 256
    public init(run: StepBenchRun) { self.run = run }
}

public enum TrainBench {
    /// Runs the benchmark and returns the JSON line.
    public static func run(_ o: TrainBenchOptions, progress: (String) -> Void = { _ in }) throws -> String {
        guard o.batch >= 1, o.seqLen >= 2 else { throw JobError("--batch ≥ 1 and --seq ≥ 2 are required") }
        let (config, params) = try o.run.start("bench train")
        let sgemm = measuredSgemmGFLOPS(config: config, rows: o.batch * o.seqLen, threads: o.run.threads)
        let model = LlamaModel(config: config, parameters: params)
        let ws = LlamaWorkspace(config: config, maxBatch: o.batch, maxSeqLen: o.seqLen)
        let optimizer = AdamW(layout: model.layout, config: AdamWConfig(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1),
                              decays: { _ in true })
        let trainer = Trainer(model: model, optimizer: optimizer,
                              schedule: LRSchedule(kind: .constant, peak: 3e-4, totalSteps: o.run.totalSteps), maxGradNorm: 1)
        let rng = Philox(seed: 0, stream: 0xBE7C)
        let tokens = (0..<(o.batch * o.seqLen)).map { Int32(rng.block(UInt64($0)).0 % UInt32(config.vocabSize)) }
        let batch = TokenBatch(batch: o.batch, seqLen: o.seqLen, tokens: tokens,
                               lengths: Array(repeating: o.seqLen, count: o.batch),
                               scoreFrom: Array(repeating: 1, count: o.batch))
        var fwd: [Double] = [], bwd: [Double] = [], opt: [Double] = [], total: [Double] = [], losses: [Float] = []
        for step in 0..<o.run.totalSteps {
            // The optimizer leaves the gradients zeroed, so a step starts with the forward pass.
            let t0 = DispatchTime.now().uptimeNanoseconds
            var t1 = t0, t2 = t0
            var stepLoss: Float = 0
            _ = try trainer.step(microBatches: 1, context: "bench step \(step + 1)") { _ in
                let lp = try model.forward(batch, workspace: ws)
                let loss = SFTLoss.compute(logprobs: lp, batch: batch)
                t1 = DispatchTime.now().uptimeNanoseconds
                loss.outputGradient.withUnsafeBufferPointer {
                    model.backward(batch, outputGradient: $0, gradients: trainer.gradients, workspace: ws)
                }
                t2 = DispatchTime.now().uptimeNanoseconds
                stepLoss = loss.loss
                return loss.loss
            }
            let t3 = DispatchTime.now().uptimeNanoseconds
            losses.append(stepLoss)
            if step >= o.run.warmup {
                fwd.append(Double(t1 - t0) / 1e6); bwd.append(Double(t2 - t1) / 1e6); opt.append(Double(t3 - t2) / 1e6)
                total.append(Double(t3 - t0) / 1e6)
            }
            progress("\(o.run.stepLabel(step)): \(String(format: "%.1f", Double(t3 - t0) / 1e6)) ms, loss \(stepLoss)")
        }
        let tokensPerStep = o.batch * o.seqLen
        let flops = Double(tokensPerStep) * flopsPerToken(config, seqLen: o.seqLen)
        let ms = median(total)
        let gflops = flops / (ms / 1e3) / 1e9
        let fields: [(String, String)] = [
            ("bench", "\"train\""), ("model", jsonString(o.run.source.path)),
            ("batch", "\(o.batch)"), ("seq_len", "\(o.seqLen)"), ("tokens_per_step", "\(tokensPerStep)"),
            ("warmup", "\(o.run.warmup)"), ("steps", "\(o.run.steps)"), ("threads", "\(o.run.threads)"),
            ("ms_per_step", formatFixed(ms)), ("tokens_per_s", formatFixed(Double(tokensPerStep) / (ms / 1e3))),
            ("phase_ms_median", "{\"forward\": \(formatFixed(median(fwd))), \"backward\": \(formatFixed(median(bwd))), \"opt\": \(formatFixed(median(opt)))}"),
            ("ms_per_step_min_max", "[\(formatFixed(total.min()!)), \(formatFixed(total.max()!))]"),
            ("flops_per_step", formatFixed(flops)), ("achieved_gflops_median", formatSignificant(gflops)),
            ("mfu", formatSignificant(gflops / sgemm)),
            ("sgemm_gflop_per_s", formatFixed(sgemm)), ("sgemm_core", jsonString(MachineRates.blasCoreName)), ("n_params", "\(params.count)"),
            ("loss_first_last", "[\(jsonNumber(losses.first!)), \(jsonNumber(losses.last!))]"),
            ("peak_rss_mib", formatFixed(peakRSSMiB())),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// Training FLOPs per token, 6·N + 12·L·T·A (TRL's formula, counted over the full T×T).
    public static func flopsPerToken(_ c: LlamaConfig, seqLen: Int) -> Double {
        let C = c.hiddenSize, A = c.attentionWidth, KV = c.numKVHeads * c.headDim, F = c.intermediateSize
        let perLayer = C * A + 2 * C * KV + A * C + 3 * C * F
        let n = c.numLayers * perLayer + (c.head == .causalLM ? c.vocabSize * C : C)
        return 6 * Double(n) + 12 * Double(c.numLayers * seqLen * A)
    }
}
