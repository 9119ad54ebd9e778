// `rondo bench ppo`: one PPO update as a campaign round runs it (`PPOStepper`, the code of
// `PPOUpdate.run`): policy forward + backward and value-model forward + backward on the same
// minibatch, TRL's clipped losses, clipping and AdamW on both models. Rows are random tokens
// [prompt | response]; the rollout log-probs are the policy's own (ratio 1 at the first step),
// the advantages and returns seeded normals. Warm-up steps, then medians; one JSON line.
//
// Tokens per step are rows × (prompt + response), counted once (each token passes through both
// models, as in TRL, where the value model is a second network of the same size).

import Foundation
import Kernels
import Model
import Rollouts
import Training

public struct PPOBenchOptions: Sendable {
    public var run: StepBenchRun
    public var rows: Int = 8
    public var promptLen: Int = 64
    public var responseLen: Int = 192
    public init(run: StepBenchRun) { self.run = run }
}

public enum PPOBench {
    public static func run(_ o: PPOBenchOptions, progress: (String) -> Void = { _ in }) throws -> String {
        guard o.rows >= 1, o.promptLen >= 1, o.responseLen >= 1 else {
            throw JobError("--rows, --prompt-len and --response-len ≥ 1 are required")
        }
        let (config, params) = try o.run.start("bench ppo")
        let policy = LlamaModel(config: config, parameters: params)
        let (vc, vp) = LoadedModel(config: config, parameters: params.clone(), directory: o.run.source).asRewardModel(seed: 1234)
        let value = LlamaModel(config: vc, parameters: vp)
        let adam = AdamWConfig(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0)
        var algorithm = AlgorithmSection()
        algorithm.type = .ppo; algorithm.optimizer.lr = 1e-6; algorithm.batchSize = o.rows
        let T = o.responseLen, L = o.promptLen + T

        // Random rows, the policy's own log-probs, seeded advantages and returns.
        let rng = Philox(seed: 0, stream: 0x990)
        var draw: UInt64 = 0
        func ids(_ n: Int) -> [Int32] {
            (0..<n).map { _ in draw += 1; return Int32(3 + Int(rng.block(draw).0 % UInt32(max(1, config.vocabSize - 3)))) }
        }
        func normals(_ n: Int) -> [Float] { (0..<n).map { _ in draw += 1; return rng.normal(draw) } }
        let prompts = (0..<o.rows).map { _ in ids(o.promptLen) }, responses = (0..<o.rows).map { _ in ids(T) }
        let logprobs = try responseLogprobs(policy, prompts: prompts, responses: responses, batchSize: o.rows)
        let records = (0..<o.rows).map { b in
            var r = SampleRecord(id: b, promptIndex: b, sampleIndex: 0, promptIDs: prompts[b], responseIDs: responses[b],
                                 logprobs: logprobs[b], finishReason: "length", seed: SeedStream(seed: 0, stream: UInt64(b)))
            r.advantages = normals(T); r.values = normals(T).map { 0.1 * $0 }; r.returns = normals(T)
            return r
        }
        // Created after the log-probs above, whose workspace is freed by then (it would inflate the peak RSS).
        let stepper = PPOStepper(policy: policy, policyOptimizer: AdamW(layout: policy.layout, config: adam),
                                 value: value, valueOptimizer: AdamW(layout: value.layout, config: adam),
                                 width: T, algorithm: algorithm, maxRows: o.rows, maxSeqLen: L)

        var times: [Double] = [], losses: [Double] = []
        for step in 0..<o.run.totalSteps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let (l, _, _) = try stepper.step(records, context: "bench step \(step + 1)")
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            losses.append(l.loss)
            if step >= o.run.warmup { times.append(ms) }
            progress("\(o.run.stepLabel(step)): \(String(format: "%.1f", ms)) ms, loss \(l.loss)")
        }
        let ms = median(times)
        let tokens = o.rows * L
        let fields: [(String, String)] = [
            ("bench", "\"ppo\""), ("model", jsonString(o.run.source.path)), ("rows", "\(o.rows)"), ("seq_len", "\(L)"),
            ("prompt_len", "\(o.promptLen)"), ("response_len", "\(T)"), ("warmup", "\(o.run.warmup)"), ("steps", "\(o.run.steps)"),
            ("threads", "\(o.run.threads)"), ("models_in_update", "2"),
            ("ms_per_step", formatFixed(ms)), ("ms_per_step_min_max", "[\(formatFixed(times.min()!)), \(formatFixed(times.max()!))]"),
            ("tokens_per_s", formatFixed(Double(tokens) / (ms / 1e3))),
            ("n_params_policy", "\(params.count)"), ("n_params_value", "\(vp.count)"),
            ("loss_first_last", "[\(jsonNumber(losses.first!)), \(jsonNumber(losses.last!))]"),
            ("peak_rss_mib", formatFixed(peakRSSMiB())),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }
}
