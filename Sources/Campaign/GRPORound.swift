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

final class GRPORound: GroupRound {
    static let name = "GRPO"
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
        let c = config.algorithm.grpo, d = GRPOConfig()
        try validateGroups(config, section: "algorithm.grpo", leavesSamplingKeys: c.temperature == d.temperature && c.maxCompletionLength == d.maxCompletionLength,
                           bad)
        try config.trainingCheck(section: "algorithm.grpo") { try c.validate(name: $0) }
    }

    func advantages(_ records: [SampleRecord]) throws -> GroupAdvantages {
        try checkGroups(records, size: groupSize, algorithm: "GRPO")
        return try GroupAdvantage.grpo(rewards: records.map { [Double($0.label?.score ?? .nan)] }, groupSize: groupSize,
                                       names: ["reward"], config: grpo)
    }

    func update(policy: PolicyModel, optimizer: AdamW, samples: [SampleRecord], pairs: [PairRecord], round r: Int,
                shouldStop: UpdateGate) throws -> [(String, Double)] {
        let T = grpo.maxCompletionLength
        for (i, s) in samples.enumerated() {
            let n = s.responseIDs.count
            guard n <= T, s.logprobs.count == n, s.advantages?.count == n, grpo.beta == 0 || s.refLogprobs?.count == n else {
                throw CampaignError("sample \(i): GRPO needs logprobs\(grpo.beta == 0 ? "" : ", ref_logprobs") and advantages for each of its \(n) tokens (max_new_tokens \(T)); the buffer does not hold a GRPO round")
            }
        }
        let u = PolicyGradientUpdate(algorithm: algorithm, passes: grpo.numIterations, temperature: grpo.temperature, width: T,
                                     seed: seed, name: "GRPO")
        let truncated = samples.map { $0.finishReason == FinishReason.length.rawValue }
        let masked = grpo.maskTruncatedCompletions ? truncated : nil
        let tokens = samples.indices.reduce(0) { $0 + (masked?[$1] ?? false ? 0 : samples[$1].responseIDs.count) }
        let scaling = PolicyLossScaling(numItemsInBatch: tokens, stepsPerGeneration: u.plan(samples: samples.count, round: r).stepsPerEpoch)
        return try u.run(policy: policy, optimizer: optimizer, samples: samples, round: r, shouldStop: shouldStop) { rows, idx, batch, logps, entropies in
            let lb = PolicyLossBatch(width: T, logps: logps, mask: batch.mask(masked: masked.map { mk in idx.map { mk[$0] } }),
                                     oldLogps: batch.grid(rows: rows.map(\.logprobs)),
                                     refLogps: grpo.beta == 0 ? nil : batch.grid(rows: rows.map { $0.refLogprobs! }),
                                     advantages: rows.map { $0.advantages!.first ?? 0 }, entropies: entropies)
            return try GRPOLoss.compute(lb, scaling: scaling, config: grpo)
        }
    }
}
