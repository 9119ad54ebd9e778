// GRPO rounds (TRL 1.16 GRPOTrainer, Shao et al. 2024) on the campaign's loop. A round's
// `prompts.per_round` prompts × `sampling.n` samples are the generation batch; each prompt's n
// samples are one group. The labeller's scores are the rewards; `GroupAdvantage.grpo` turns them
// into group-relative advantages (TRL's `scale_rewards`), stored per token in the buffer. The
// update runs `num_iterations` (μ) passes over the generation batch in seeded minibatches of
// `algorithm.batch_size` samples, one optimizer step each, with `GRPOLoss` (every TRL loss type)
// against the stored old log-probs and, when beta ≠ 0, the stored reference log-probs — so
// `rondo replay` reproduces it bit for bit from the buffer.
//
// TRL mapping: per_device_train_batch_size = batch_size, gradient_accumulation_steps = 1,
// steps_per_generation = ⌈samples / batch_size⌉ (the loss normalisers follow from it),
// num_generations = sampling.n, max_completion_length = sampling.max_new_tokens, temperature =
// sampling.temperature. Where Rondo differs: the old log-probs are the sampler's (temperature 1,
// within 1e-4 of a training forward, Sampler.swift), so a campaign needs sampling.temperature 1;
// TRL recomputes them with a forward pass when μ > 1 and uses the detached current ones at μ = 1.

import Foundation
import Kernels
import Model
import Rollouts
import Sampling
import Training

final class GRPORound: RoundAlgorithm {
    static let kind = AlgorithmKind.grpo
    static let statusColumns = ["reward", "frac_reward_zero_std"]
    static let rowsPhase = (name: "advantages", key: "time/advantages_s")

    let algorithm: AlgorithmSection
    /// The section's GRPO settings with temperature and max_completion_length from `sampling`.
    let grpo: GRPOConfig
    let groupSize: Int
    let seed: UInt64

    init(campaign: Campaign, algorithm: AlgorithmSection) {
        self.algorithm = algorithm
        var g = algorithm.grpo
        g.maxCompletionLength = campaign.config.sampling.maxNewTokens
        g.temperature = Double(campaign.config.sampling.temperature)
        grpo = g
        groupSize = campaign.config.sampling.n
        seed = campaign.config.seed
    }

    static func validate(_ config: CampaignConfig, _ bad: (String, String) -> CampaignError) throws {
        let g = config.algorithm.grpo, d = GRPOConfig()
        if config.sampling.n < 2 { throw bad("sampling.n", "must be ≥ 2 (GRPO's advantages compare the samples of a prompt)") }
        if config.sampling.temperature != 1 {
            throw bad("sampling.temperature", "must be 1 for GRPO: the stored old log-probs are the sampler's, at temperature 1")
        }
        if g.temperature != d.temperature || g.maxCompletionLength != d.maxCompletionLength {
            throw bad("algorithm.grpo", "takes temperature and max_completion_length from sampling.temperature and sampling.max_new_tokens; remove them")
        }
        if config.algorithm.epochs != 1 {
            throw bad("algorithm.epochs", "must be 1 for GRPO; passes over a round's samples are algorithm.grpo.num_iterations")
        }
        try config.trainingCheck(section: "algorithm.grpo") { try g.validate(name: $0) }
    }

    /// Group-relative advantages from the scores, stored per token.
    func buildRows(_ records: inout [SampleRecord], round r: Int, previous: RoundState) throws -> RoundRows {
        let adv = try advantages(records)
        for i in records.indices {
            records[i].advantages = Array(repeating: Float(adv.advantages[i]), count: records[i].responseIDs.count)
        }
        return RoundRows(metrics: adv.metrics, summary: "\(records.count) samples in groups of \(groupSize), GRPO update")
    }

    func replayRows(_ records: inout [SampleRecord], pairs: [PairRecord], previous: RoundState,
                    campaign: AlgorithmSection) throws -> ReplayRows {
        let adv = try advantages(records)
        let match = records.indices.allSatisfy { i in
            records[i].advantages == Array(repeating: Float(adv.advantages[i]), count: records[i].responseIDs.count)
        }
        for i in records.indices {
            records[i].advantages = Array(repeating: Float(adv.advantages[i]), count: records[i].responseIDs.count)
        }
        return ReplayRows(metrics: adv.metrics,
                          report: "advantages recomputed from the buffer's scores \(match ? "match" : "DIFFER from") the stored ones\n",
                          matchesBuffer: match)
    }

    func advantages(_ records: [SampleRecord]) throws -> GroupAdvantages {
        for (i, s) in records.enumerated() where s.promptIndex != records[i / groupSize * groupSize].promptIndex {
            throw CampaignError("sample \(i): GRPO needs \(groupSize) samples (sampling.n) per prompt, in prompt order; the buffer does not hold a GRPO round")
        }
        return try GroupAdvantage.grpo(rewards: records.map { [Double($0.label?.score ?? .nan)] }, groupSize: groupSize,
                                       names: ["reward"], config: grpo)
    }

    func update(policy: LlamaModel, optimizer: AdamW, samples: [SampleRecord], pairs: [PairRecord], round r: Int,
                shouldStop: () -> Bool) throws -> [(String, Double)] {
        guard !samples.isEmpty else { return [("train/samples", 0), ("train/steps", 0)] }
        let T = grpo.maxCompletionLength
        for (i, s) in samples.enumerated() {
            let n = s.responseIDs.count
            guard n <= T, s.logprobs.count == n, s.advantages?.count == n, grpo.beta == 0 || s.refLogprobs?.count == n else {
                throw CampaignError("sample \(i): GRPO needs logprobs\(grpo.beta == 0 ? "" : ", ref_logprobs") and advantages for each of its \(n) tokens (max_new_tokens \(T)); the buffer does not hold a GRPO round")
            }
        }
        let bs = max(1, min(algorithm.batchSize, samples.count))
        var run = RunOptions()
        run.epochs = grpo.numIterations; run.batchSize = bs; run.seed = CampaignConfig.roundSeed(seed, r)
        let plan = TrainingPlan(examples: samples.count, run: run)
        let truncated = samples.map { $0.finishReason == FinishReason.length.rawValue }
        let masked = grpo.maskTruncatedCompletions ? truncated : nil
        let tokens = samples.indices.reduce(0) { $0 + (masked?[$1] ?? false ? 0 : samples[$1].responseIDs.count) }
        let scaling = PolicyLossScaling(numItemsInBatch: tokens, stepsPerGeneration: plan.stepsPerEpoch)
        let trainer = Trainer(model: policy, optimizer: optimizer, schedule: roundSchedule(algorithm), maxGradNorm: algorithm.optimizer.maxGradNorm)
        let ws = LlamaWorkspace(config: policy.config, maxBatch: bs, maxSeqLen: samples.map { $0.promptIDs.count + T }.max()!)
        ws.head = LMHeadOptions(temperature: grpo.temperature, entropies: true)
        var sums: [String: Double] = [:], keys: [String] = []
        var gradNorm = 0.0, lr = 0.0
        let completed = try plan.runSteps { s, micro in
            if shouldStop() { return .stop }
            let stats = try trainer.step(microBatches: micro.count, context: "round \(r), GRPO step \(s + 1)") { m in
                let idx = micro[m]
                let l = try stepLoss(policy, ws, trainer, idx.map { samples[$0] }, masked: masked.map { mk in idx.map { mk[$0] } },
                                     scaling: scaling, width: T)
                for (k, v) in l.metrics {
                    if sums[k] == nil { keys.append(k) }
                    sums[k, default: 0] += v
                }
                return Float(l.loss)
            }
            gradNorm += Double(stats.gradNorm)
            lr = stats.learningRate
            return .proceed
        }
        guard completed else { throw RoundInterrupted() }
        let steps = Double(max(1, plan.lastStep))
        return keys.map { ($0, sums[$0]! / steps) }
            + [("grad_norm", gradNorm / steps), ("learning_rate", lr), ("train/samples", Double(samples.count)),
               ("train/steps", Double(plan.lastStep))]
    }

    /// One minibatch: the policy's log-probs and entropies at the temperature, GRPO's loss against the
    /// stored old (and reference) log-probs, and the backward of its gradient into the trainer.
    func stepLoss(_ policy: LlamaModel, _ ws: LlamaWorkspace, _ trainer: Trainer, _ rows: [SampleRecord], masked: [Bool]?,
                  scaling: PolicyLossScaling, width T: Int) throws -> (loss: Double, metrics: [(String, Double)]) {
        let batch = try CompletionBatch(prompts: rows.map(\.promptIDs), completions: rows.map(\.responseIDs), width: T,
                                        pad: policy.config.batchPadID)
        let out = try policy.forward(batch.tokens, workspace: ws)
        let lb = PolicyLossBatch(width: T, logps: batch.grid(out), mask: batch.mask(masked: masked),
                                 oldLogps: batch.grid(rows: rows.map(\.logprobs)),
                                 refLogps: grpo.beta == 0 ? nil : batch.grid(rows: rows.map { $0.refLogprobs! }),
                                 advantages: rows.map { $0.advantages!.first ?? 0 },
                                 entropies: batch.grid(UnsafeBufferPointer(start: ws.entropy, count: rows.count * batch.tokens.seqLen)))
        let l = try GRPOLoss.compute(lb, scaling: scaling, config: grpo)
        if l.loss.isFinite {
            batch.outputGradient(l.dLogps).withUnsafeBufferPointer {
                policy.backward(batch.tokens, outputGradient: $0, gradients: trainer.gradients, workspace: ws)
            }
        }
        return (l.loss, [("loss", l.loss)] + l.metrics)
    }
}
