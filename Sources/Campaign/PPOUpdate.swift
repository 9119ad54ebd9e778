// PPO's rollout post-processing and update (TRL's PPOTrainer, trl 1.12): the value model's outputs
// at every response position, the advantages and returns `PPO.advantages` computes from them (stored
// in the round's buffer), and epochs of clipped minibatch updates of the policy and the value model
// that read only the buffer's records, so `rondo replay` reproduces the update bit for bit.
// PPORound.swift documents where Rondo differs from TRL.

import Foundation
import Kernels
import Model
import Rollouts
import Training

enum PPOUpdate {
    /// The value model's output for each sample at positions P − 1 + t, t = 0..<min(n + 1, width)
    /// (P prompt tokens, n response tokens): the value of the state before response token t, plus
    /// the state after the last token when the response is shorter than the width.
    static func values(_ model: LlamaModel, prompts: [[Int32]], responses: [[Int32]], width: Int, batchSize: Int = 16,
                       owns: (Int) -> Bool = { _ in true }) throws -> [[Float]] {
        if let i = prompts.firstIndex(where: \.isEmpty) {
            throw CampaignError("sample \(i) has an empty prompt; PPO's first value is read at the prompt's last token")
        }
        return try forwardInBatches(model, prompts: prompts, responses: responses, batchSize: batchSize, pad: 0,
                                    scoreResponses: false, owns: owns) { v, row, i in
            (0..<min(responses[i].count + 1, width)).map { v[row + prompts[i].count - 1 + $0] }
        }
    }

    /// TRL's rollout post-processing over a round's samples (whitening spans them all): stores each
    /// record's masked values, advantages (n entries) and returns (values' length) and returns the
    /// `objective/*` metrics.
    static func attachAdvantages(_ records: inout [SampleRecord], values: [[Float]], width T: Int, klCoef: Double,
                                 config: PPOConfig) throws -> [(String, Double)] {
        let B = records.count
        var lp = [Float](repeating: 0, count: B * T), ref = lp, v = lp
        var lengths: [Int] = [], scores: [Float] = []
        for (b, r) in records.enumerated() {
            let n = r.responseIDs.count
            guard n >= 1, n <= T else {
                throw CampaignError("sample \(b) has \(n) response tokens; PPO needs 1…\(T) (sampling.max_new_tokens)")
            }
            guard let rl = r.refLogprobs, rl.count == n, r.logprobs.count == n, let s = r.label?.score else {
                throw CampaignError("sample \(b) lacks ref_logprobs, logprobs or a score for every token; PPO cannot use it")
            }
            for t in 0..<n { lp[b * T + t] = r.logprobs[t]; ref[b * T + t] = rl[t] }
            for t in 0..<values[b].count { v[b * T + t] = values[b][t] }
            lengths.append(n); scores.append(s)
        }
        let a = PPO.advantages(PPORollout(width: T, lengths: lengths, logprobs: lp, refLogprobs: ref, values: v, scores: scores),
                               klCoef: klCoef, config: config)
        for b in 0..<B {
            let n = lengths[b], kept = min(n + 1, T)
            records[b].values = Array(a.values[(b * T)..<(b * T + kept)])
            records[b].advantages = Array(a.advantages[(b * T)..<(b * T + n)])
            records[b].returns = Array(a.returns[(b * T)..<(b * T + kept)])
        }
        return a.metrics
    }

    /// Runs `algorithm.epochs` passes of clipped PPO updates over minibatches of `algorithm.batch_size`
    /// samples (seeded order), on the policy and the value model. Reads only the records: token ids,
    /// rollout log-probs, values, advantages and returns. Returns TRL-named metrics, averaged over steps.
    /// Throws `RoundInterrupted` when `shouldStop` answers true between optimizer steps.
    static func run(policy: LlamaModel, policyOptimizer: AdamW, value: LlamaModel, valueOptimizer: AdamW,
                    samples: [SampleRecord], width T: Int, algorithm a: AlgorithmSection, seed: UInt64,
                    round: Int, reducer: GradientReducer? = nil, shouldStop: UpdateGate = { _, _ in false }) throws -> [(String, Double)] {
        guard !samples.isEmpty else { return [("train/samples", 0), ("train/steps", 0)] }
        for (i, s) in samples.enumerated() {
            let n = s.responseIDs.count, kept = min(n + 1, T)
            guard n >= 1, n <= T, s.logprobs.count == n, s.advantages?.count == n, s.values?.count == kept,
                  s.returns?.count == kept, !s.promptIDs.isEmpty else {
                throw CampaignError("sample \(i): PPO needs logprobs and advantages for each of its \(n) tokens and \(kept) values and returns (max_new_tokens \(T)); the buffer does not hold a PPO round")
            }
        }
        let plan = roundPlan(examples: samples.count, algorithm: a, seed: CampaignConfig.roundSeed(seed, round))
        let maxLen = samples.map { $0.promptIDs.count + $0.responseIDs.count }.max()!
        let stepper = PPOStepper(policy: policy, policyOptimizer: policyOptimizer, value: value, valueOptimizer: valueOptimizer,
                                 width: T, algorithm: a, maxRows: min(a.batchSize, samples.count), maxSeqLen: maxLen,
                                 reducers: reducer.map { (policy: $0, value: $0.companion()) })
        var sums: [String: Double] = [:], ratios: [Double] = []
        var lr = 0.0
        let completed = try plan.runSteps { s, micro in
            if shouldStop(s, plan.lastStep) { return .stop }
            let (l, ps, vs) = try stepper.step(micro[0].map { samples[$0] }, context: "round \(round), PPO step \(s + 1)")
            for (k, x) in [("policy/approxkl_avg", l.approxKL), ("policy/clipfrac_avg", l.pgClipfrac), ("loss/policy_avg", l.pgLoss),
                           ("loss/value_avg", l.vfLoss), ("val/clipfrac_avg", l.vfClipfrac), ("loss", l.loss),
                           ("grad_norm", Double(ps.gradNorm)), ("value/grad_norm", Double(vs.gradNorm))] {
                sums[k, default: 0] += x
            }
            ratios.append(l.ratioMean)
            lr = ps.learningRate
            return .proceed
        }
        guard completed else { throw RoundInterrupted() }
        let steps = Double(max(1, plan.lastStep))
        let mean = ratios.reduce(0, +) / steps
        let variance = ratios.count > 1 ? ratios.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(ratios.count - 1) : 0
        let keys = ["loss", "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg", "loss/value_avg", "val/clipfrac_avg",
                    "grad_norm", "value/grad_norm"]
        return keys.map { ($0, sums[$0, default: 0] / steps) }
            + [("val/ratio", mean), ("val/ratio_var", variance), ("learning_rate", lr),
               ("train/samples", Double(samples.count)), ("train/steps", Double(plan.lastStep))]
    }
}

/// One PPO optimizer step on a minibatch of records: policy and value forward, the clipped losses,
/// both backwards, both AdamW updates. Holds the workspaces, so steps allocate only small arrays.
final class PPOStepper {
    let policy: LlamaModel, value: LlamaModel
    let policyTrainer: Trainer, valueTrainer: Trainer
    let policyWorkspace: LlamaWorkspace, valueWorkspace: LlamaWorkspace
    let width: Int
    let config: PPOConfig
    let pad: Int32
    /// Data-parallel: the sums of the policy's and the value model's gradients over the ranks.
    let reducers: (policy: GradientReducer, value: GradientReducer)?

    init(policy: LlamaModel, policyOptimizer: AdamW, value: LlamaModel, valueOptimizer: AdamW, width: Int,
         algorithm a: AlgorithmSection, maxRows: Int, maxSeqLen: Int,
         reducers: (policy: GradientReducer, value: GradientReducer)? = nil) {
        self.reducers = reducers
        let schedule = roundSchedule(a)
        self.policy = policy; self.value = value; self.width = width; config = a.ppo.loss
        policyTrainer = Trainer(model: policy, optimizer: policyOptimizer, schedule: schedule, maxGradNorm: a.optimizer.maxGradNorm)
        valueTrainer = Trainer(model: value, optimizer: valueOptimizer, schedule: schedule, maxGradNorm: a.optimizer.maxGradNorm)
        policyWorkspace = LlamaWorkspace(config: policy.config, maxBatch: max(1, maxRows), maxSeqLen: maxSeqLen)
        valueWorkspace = LlamaWorkspace(config: value.config, maxBatch: max(1, maxRows), maxSeqLen: maxSeqLen)
        pad = policy.config.batchPadID
    }

    func step(_ rows: [SampleRecord], context: @autoclosure () -> String) throws -> (PPOLossResult, StepStats, StepStats) {
        guard let reducers else {
            let l = try accumulate(rows, counts: nil, context: context())
            let ps = try policyTrainer.apply(loss: l.pgLoss, context: "\(context()) (policy)")
            let vs = try valueTrainer.apply(loss: l.vfLoss, context: "\(context()) (value model)")
            return (l, ps, vs)
        }
        // Each shard's rows, normalised by the whole minibatch; gradients and metrics summed in rank order.
        let counts = PPOCounts(lengths: rows.map(\.responseIDs.count), width: width)
        let pg = UnsafeMutableBufferPointer(start: policyTrainer.gradients.base, count: policyTrainer.gradients.count)
        let vg = UnsafeMutableBufferPointer(start: valueTrainer.gradients.base, count: valueTrainer.gradients.count)
        var shards: [[Double]] = []
        for (k, shard) in reducers.policy.localShards.enumerated() {
            let part = reducers.policy.part(Array(rows.indices), shard: shard).map { rows[$0] }
            let l = try part.isEmpty ? nil : accumulate(part, counts: counts, context: context())
            shards.append(l?.scalars ?? [0, 0, 0, 0, 0, 0])
            try reducers.policy.collect(pg, shard: k)
            try reducers.value.collect(vg, shard: k)
        }
        try reducers.policy.finish(pg)
        try reducers.value.finish(vg)
        let l = PPOLossResult(scalars: try reducers.policy.sum(shards), vfCoef: config.vfCoef)
        let ps = try policyTrainer.apply(loss: l.pgLoss, context: "\(context()) (policy)")
        let vs = try valueTrainer.apply(loss: l.vfLoss, context: "\(context()) (value model)")
        return (l, ps, vs)
    }

    /// Forward, loss and backward of `rows` into both models' gradients (no optimizer step).
    private func accumulate(_ rows: [SampleRecord], counts: PPOCounts?, context: @autoclosure () -> String) throws -> PPOLossResult {
        let K = rows.count, T = width
        let batch = TokenBatch(rows: rows.map { $0.promptIDs + $0.responseIDs }, pad: pad, scoreFrom: rows.map { $0.promptIDs.count })
        let S = batch.seqLen
        let lp = try policy.forward(batch, workspace: policyWorkspace)
        let vp = try value.forward(batch, workspace: valueWorkspace)
        // Rows padded to the width: response token t of row b at b·T + t (the model's output at P + t;
        // the value before it at P − 1 + t).
        var newLP = [Float](repeating: 0, count: K * T), newV = newLP, oldLP = newLP, oldV = newLP, adv = newLP, ret = newLP
        for (b, r) in rows.enumerated() {
            let P = r.promptIDs.count, n = r.responseIDs.count
            for t in 0..<n {
                newLP[b * T + t] = lp[b * S + P + t]; oldLP[b * T + t] = r.logprobs[t]; adv[b * T + t] = r.advantages![t]
            }
            for t in 0..<min(n + 1, T) {
                newV[b * T + t] = vp[b * S + P - 1 + t]; oldV[b * T + t] = r.values![t]; ret[b * T + t] = r.returns![t]
            }
        }
        let l = PPO.loss(newLogprobs: newLP, newValues: newV, oldLogprobs: oldLP, oldValues: oldV, advantages: adv,
                         returns: ret, lengths: rows.map(\.responseIDs.count), width: T, config: config, counts: counts)
        guard l.loss.isFinite else {
            throw CampaignError("\(context()): the loss is \(l.loss); the update was refused and nothing was written. Lower learning_rate")
        }
        var dp = [Float](repeating: 0, count: K * S), dv = dp
        for (b, r) in rows.enumerated() {
            let P = r.promptIDs.count, n = r.responseIDs.count
            for t in 0..<n { dp[b * S + P + t] = l.dNewLogprobs[b * T + t] }
            for t in 0..<min(n + 1, T) { dv[b * S + P - 1 + t] = l.dNewValues[b * T + t] }
        }
        dp.withUnsafeBufferPointer { policy.backward(batch, outputGradient: $0, gradients: policyTrainer.gradients, workspace: policyWorkspace) }
        dv.withUnsafeBufferPointer { value.backward(batch, outputGradient: $0, gradients: valueTrainer.gradients, workspace: valueWorkspace) }
        return l
    }
}
