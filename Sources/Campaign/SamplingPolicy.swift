// `sampling.policy`: which weights sample a round. `current` (the default) is online learning: the
// policy as the previous round left it. `initial` samples every round from the starting policy, so
// a DPO campaign becomes offline DPO on fresh pairs of the starting policy each round (the study's
// baseline, docs/experiments.md). Algorithms whose loss needs the sampler's own log-probs (PPO,
// GRPO, RLOO) refuse it: `RoundAlgorithm.acceptsInitialSamples`.

/// Which weights sample each round.
public enum SamplingPolicy: String, Codable, Sendable { case current, initial }

extension CampaignConfig {
    /// `sampling.policy: initial` only with an algorithm that learns from any policy's samples.
    func validateSamplingPolicy(_ bad: (String, String) -> CampaignError) throws {
        guard sampling.policy == .initial, !RoundAlgorithms.type(of: algorithm.type).acceptsInitialSamples else { return }
        throw bad("sampling.policy", "is 'initial', but '\(algorithm.type.rawValue)' learns only from the current policy's own samples "
                  + "(its loss uses their log-probs); use 'current' (the default), or algorithm type 'dpo' for offline DPO")
    }
}
