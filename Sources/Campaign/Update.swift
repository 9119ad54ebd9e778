// A round's DPO update, from the round's buffer: the same function runs online (after labelling)
// and in `rondo replay`, so replay reproduces the round bit for bit. Its inputs are exactly the
// previous round's weights and optimizer state, the buffer's pairs and samples (token ids and the
// stored per-token reference log-probs), the algorithm section and the seed.

import Foundation
import Kernels
import Model
import Rollouts
import Training

public enum RoundUpdate {
    /// Preference examples of `pairs` and their reference sums (Σ ref_logprobs in token order).
    public static func examples(samples: [SampleRecord], pairs: [PairRecord]) throws -> ([PreferenceExample], [(Double, Double)]) {
        var ex: [PreferenceExample] = [], ref: [(Double, Double)] = []
        for (k, p) in pairs.enumerated() {
            guard p.chosen < samples.count, p.rejected < samples.count else {
                throw CampaignError("pair \(k) refers to sample \(max(p.chosen, p.rejected)), but the buffer has \(samples.count)")
            }
            let c = samples[p.chosen], r = samples[p.rejected]
            guard let rc = c.refLogprobs, let rr = r.refLogprobs else {
                throw CampaignError("pair \(k): samples \(p.chosen)/\(p.rejected) have no ref_logprobs; the buffer cannot drive an update")
            }
            ex.append(PreferenceExample(prompt: c.promptIDs, chosen: c.responseIDs, rejected: r.responseIDs, line: k + 1))
            ref.append((rc.reduce(0.0) { $0 + Double($1) }, rr.reduce(0.0) { $0 + Double($1) }))
        }
        return (ex, ref)
    }

    /// Runs `algorithm.epochs` passes of DPO over the examples; returns TRL-named metrics (means over
    /// the round's pairs and steps).
    public static func run(model: LlamaModel, optimizer: AdamW, examples: [PreferenceExample], referenceSums: [(Double, Double)],
                           algorithm a: AlgorithmSection, seed: UInt64, round: Int) throws -> [(String, Double)] {
        guard !examples.isEmpty else { return [("train/pairs", 0), ("train/steps", 0)] }
        var run = RunOptions()
        run.epochs = a.epochs
        run.batchSize = a.batchSize
        run.seed = seed &+ UInt64(round) &* 0x9E37_79B9_7F4A_7C15
        let plan = TrainingPlan(examples: examples.count, run: run)
        let loss = DPOLossConfig(lossType: DPOLossType(rawValue: a.lossType) ?? .sigmoid, beta: a.beta, labelSmoothing: a.labelSmoothing,
                                 rpoAlpha: a.rpoAlpha)
        let schedule = LRSchedule(kind: .constant, peak: a.learningRate, warmupSteps: a.warmupSteps, totalSteps: 1 << 40)
        let trainer = Trainer(model: model, optimizer: optimizer, schedule: schedule, maxGradNorm: a.maxGradNorm)
        let bs = max(1, min(a.batchSize, examples.count))
        let maxLen = examples.map { $0.prompt.count + max($0.chosen.count, $0.rejected.count) }.max()!
        let ws = LlamaWorkspace(config: model.config, maxBatch: 2 * bs, maxSeqLen: maxLen)
        let pad = Int32(model.config.padTokenID ?? model.config.eosTokenIDs.first ?? 0)
        var metrics = DPOMetrics()
        var gradNorm = 0.0, lr = 0.0
        for s in 0..<plan.lastStep {
            let micro = plan.microBatches(step: s)
            let pairsInStep = micro.reduce(0) { $0 + $1.count }
            let stats = try trainer.step(microBatches: micro.count, context: "round \(round), update step \(s + 1)") { i in
                let idx = micro[i]
                let b = DPOJob.batch(idx.map { examples[$0] }, pad: pad)
                let out = try model.forward(b, workspace: ws)
                let refRows = idx.map { referenceSums[$0].0 } + idx.map { referenceSums[$0].1 }
                let l = DPOLoss.compute(policyOutput: out, batch: b, referenceLogps: refRows, config: loss,
                                        pairsInStep: pairsInStep, metrics: &metrics)
                guard l.loss.isFinite else { return l.loss }
                l.outputGradient.withUnsafeBufferPointer {
                    model.backward(b, outputGradient: $0, gradients: trainer.gradients, workspace: ws)
                }
                return l.loss
            }
            gradNorm += Double(stats.gradNorm)
            lr = stats.learningRate
        }
        let steps = Double(max(1, plan.lastStep))
        return metrics.values + [("grad_norm", gradNorm / steps), ("learning_rate", lr),
                                 ("train/pairs", Double(examples.count)), ("train/steps", Double(plan.lastStep))]
    }
}
