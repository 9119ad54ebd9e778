// RLOO rounds (TRL 1.16 RLOOTrainer; Ahmadian et al. 2024) on the campaign's loop. Like GRPO, each
// prompt's `sampling.n` samples are one group; the advantage of a sample is its reward minus the
// mean of the other samples' rewards in the group (leave-one-out), after the k1 KL penalty
// β · Σ_t (log π_gen − log π_ref) is taken from the reward when `beta` ≠ 0 (TRL's default 0.05).
// The loss is TRL's clipped sequence-level ratio exp(Σ_t log π − old_logps) with the summed
// generation-time log-probs as old_logps, averaged over sequences. Advantages are stored per token in
// the buffer, so `rondo replay` reproduces the update bit for bit.
//
// TRL mapping as for GRPO (GRPORound.swift): per_device_train_batch_size = batch_size,
// num_generations = sampling.n, max_completion_length = sampling.max_new_tokens, temperature 1
// (the sampler's stored log-probs are the old and generation log-probs).

import Foundation
import Model
import Rollouts
import Sampling
import Training

final class RLOORound: GroupRound {
    static let name = "RLOO"
    static let kind = AlgorithmKind.rloo
    static let statusColumns = ["reward", "frac_reward_zero_std"]
    static let rowsPhase = (name: "advantages", key: "time/advantages_s")

    let algorithm: AlgorithmSection
    /// The section's RLOO settings with temperature and max_completion_length from `sampling`.
    let rloo: RLOOConfig
    let groupSize: Int
    let seed: UInt64

    init(campaign: Campaign, algorithm: AlgorithmSection) {
        self.algorithm = algorithm
        var c = algorithm.rloo
        c.maxCompletionLength = campaign.config.sampling.maxNewTokens
        c.temperature = Double(campaign.config.sampling.temperature)
        rloo = c
        groupSize = campaign.config.sampling.n
        seed = campaign.config.seed
    }

    static func validate(_ config: CampaignConfig, _ bad: (String, String) -> CampaignError) throws {
        let c = config.algorithm.rloo, d = RLOOConfig()
        try validateGroups(config, section: "algorithm.rloo", leavesSamplingKeys: c.temperature == d.temperature && c.maxCompletionLength == d.maxCompletionLength,
                           bad)
        try config.trainingCheck(section: "algorithm.rloo") { try c.validate(name: $0) }
    }

    /// Whether row i's tokens count (mask_truncated_completions leaves truncated rows out).
    func counted(_ s: SampleRecord) -> Bool { !(rloo.maskTruncatedCompletions && s.finishReason == FinishReason.length.rawValue) }

    func advantages(_ records: [SampleRecord]) throws -> GroupAdvantages {
        try checkGroups(records, size: groupSize, algorithm: "RLOO")
        var kl: [Double]? = nil, tokens = 0
        if rloo.beta != 0 {
            kl = try records.enumerated().map { i, s in
                guard let ref = s.refLogprobs, ref.count == s.logprobs.count else {
                    throw CampaignError("sample \(i): RLOO with beta \(rloo.beta) needs the reference log-prob of each token; the buffer does not hold them")
                }
                return counted(s) ? zip(s.logprobs, ref).reduce(0) { $0 + Double($1.0) - Double($1.1) } : 0
            }
            tokens = records.reduce(0) { $0 + (counted($1) ? $1.responseIDs.count : 0) }
        }
        return try GroupAdvantage.rloo(rewards: records.map { [Double($0.label?.score ?? .nan)] }, groupSize: groupSize,
                                       names: ["reward"], klPerRow: kl, klTokens: tokens, config: rloo)
    }

    func update(policy: PolicyModel, optimizer: AdamW, samples: [SampleRecord], pairs: [PairRecord], round r: Int,
                shouldStop: UpdateGate) throws -> [(String, Double)] {
        let T = rloo.maxCompletionLength
        for (i, s) in samples.enumerated() {
            let n = s.responseIDs.count
            guard n <= T, s.logprobs.count == n, s.advantages?.count == n else {
                throw CampaignError("sample \(i): RLOO needs logprobs and advantages for each of its \(n) tokens (max_new_tokens \(T)); the buffer does not hold an RLOO round")
            }
        }
        let u = PolicyGradientUpdate(algorithm: algorithm, passes: rloo.numIterations, temperature: rloo.temperature, width: T,
                                     seed: seed, name: "RLOO")
        return try u.run(policy: policy, optimizer: optimizer, samples: samples, round: r, shouldStop: shouldStop) { rows, _, batch, logps, entropies in
            let lb = PolicyLossBatch(width: T, logps: logps, mask: batch.mask(masked: rows.map { !counted($0) }),
                                     advantages: rows.map { $0.advantages!.first ?? 0 }, entropies: entropies)
            let old = batch.grid(rows: rows.map(\.logprobs))
            return try RLOOLoss.compute(lb, oldSequenceLogps: lb.maskedRowSums { Double(old[$0]) }, config: rloo)
        }
    }
}
