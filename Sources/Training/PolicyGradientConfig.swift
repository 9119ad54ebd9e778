// Settings of the group-relative policy-gradient losses: TRL 1.16's `GRPOConfig`
// (`trl/trainer/grpo_config.py`) and `RLOOConfig` (`trl/trainer/rloo_config.py`), restricted to the
// fields that change the numerics (advantages, losses, metrics). Keys are TRL's snake_case names and
// every default is TRL 1.16's, written once, on the field. Formulas: Tests/Fixtures/grpo/README.md.

import Foundation

/// TRL 1.16's GRPO `loss_type`s: how the per-token loss is formed and normalised.
public enum GRPOLossType: String, Codable, Sendable, CaseIterable {
    /// Per-sequence token mean, then mean over rows (the GRPO paper).
    case grpo
    /// Σ tokens / (B · max_completion_length) (Dr. GRPO).
    case drGRPO = "dr_grpo"
    /// Σ tokens / tokens of the whole generation batch (DAPO; TRL's default).
    case dapo
    /// Σ tokens / tokens of the local micro-batch.
    case bnpo
    /// −stopgrad(min(r, epsilon_high)) · A · log p, normalised like dapo (MiniMax-M1).
    case cispo
    /// Soft sigmoid gate instead of the clip, normalised like grpo.
    case sapo
    /// Per-sequence sum, mean over rows (length-unbiased sequence policy optimisation).
    case luspo
    /// Detached gamma weight of the summed log-ratio · A · log p, normalised like dapo.
    case vespo
}

/// TRL `scale_rewards`: what the centred rewards are divided by.
public enum RewardScaling: String, Codable, Sendable, CaseIterable {
    /// By the group's standard deviation (TRL's default; `true` means this).
    case group
    /// By the whole batch's standard deviation (the mean stays per group).
    case batch
    /// Not scaled (`false` means this).
    case none

    /// Also accepts TRL's boolean forms: `true` → group, `false` → none (`GRPOConfig.__post_init__`).
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = b ? .group : .none; return }
        let s = try c.decode(String.self)
        guard let v = RewardScaling(rawValue: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "scale_rewards must be group, batch, none, true or false; got '\(s)'")
        }
        self = v
    }
}

/// TRL `importance_sampling_level`.
public enum ImportanceSamplingLevel: String, Codable, Sendable, CaseIterable {
    /// One ratio per token (TRL's default).
    case token
    /// One ratio per sequence: exp(mean over the row's tokens of the log-ratio) (GSPO).
    case sequence
}

/// TRL `multi_objective_aggregation`: how several reward functions become one advantage.
public enum MultiObjectiveAggregation: String, Codable, Sendable, CaseIterable {
    /// Weighted sum of the raw rewards, then group normalisation (TRL's default).
    case sumThenNormalize = "sum_then_normalize"
    /// Each function normalised per group, weighted sum, then batch normalisation (GDPO).
    case normalizeThenSum = "normalize_then_sum"
}

/// GRPO settings (TRL 1.16 `GRPOConfig`; defaults are TRL's).
public struct GRPOConfig: Codable, Sendable, Equatable {
    /// How the per-token loss is formed and normalised (TRL `loss_type`).
    public var lossType: GRPOLossType = .dapo
    /// KL coefficient of the k3 term against the reference; 0 loads no reference (TRL `beta`).
    public var beta: Double = 0
    /// Lower clip ε: ratios below 1 − ε are clipped (TRL `epsilon`).
    public var epsilon: Double = 0.2
    /// Upper clip ε (1 + ε_high); for `cispo` the absolute cap on the ratio. nil = `epsilon` (TRL `epsilon_high`).
    public var epsilonHigh: Double? = nil
    /// INTELLECT-2 two-sided clip: the unclipped branch uses min(r, delta); nil = off (TRL `delta`).
    public var delta: Double? = nil
    /// Token ratios or one ratio per sequence (GSPO) (TRL `importance_sampling_level`).
    public var importanceSamplingLevel: ImportanceSamplingLevel = .token
    /// How rewards are scaled into advantages (TRL `scale_rewards`).
    public var scaleRewards: RewardScaling = .group
    /// How several reward functions are combined (TRL `multi_objective_aggregation`).
    public var multiObjectiveAggregation: MultiObjectiveAggregation = .sumThenNormalize
    /// Weight of each reward function; nil = 1 for each (TRL `reward_weights`).
    public var rewardWeights: [Double]? = nil
    /// Multiply the k3 KL by the (differentiable) importance ratio (TRL `use_bias_correction_kl`).
    public var useBiasCorrectionKL: Bool = true
    /// Truncated completions (last token neither eos nor pad) get mask 0 (TRL `mask_truncated_completions`).
    public var maskTruncatedCompletions: Bool = false
    /// Sampling temperature; every log-prob in the loss is taken of softmax(logits / T) (TRL `temperature`).
    public var temperature: Double = 1
    /// Updates per generation batch, μ; > 1 needs stored old log-probs (TRL `num_iterations`).
    public var numIterations: Int = 1
    /// The normaliser of `dr_grpo` (TRL `max_completion_length`; in a campaign, `sampling.max_new_tokens`).
    public var maxCompletionLength: Int = 512
    /// SAPO gate temperature for positive advantages (TRL `sapo_temperature_pos`).
    public var sapoTemperaturePos: Double = 1
    /// SAPO gate temperature for non-positive advantages (TRL `sapo_temperature_neg`).
    public var sapoTemperatureNeg: Double = 1.05
    /// VESPO k for A ≥ 0 (TRL `vespo_k_pos`).
    public var vespoKPos: Double = 2
    /// VESPO λ for A ≥ 0 (TRL `vespo_lambda_pos`).
    public var vespoLambdaPos: Double = 3
    /// VESPO k for A < 0 (TRL `vespo_k_neg`).
    public var vespoKNeg: Double = 3
    /// VESPO λ for A < 0 (TRL `vespo_lambda_neg`).
    public var vespoLambdaNeg: Double = 2

    /// TRL's defaults.
    public init() {}

    /// ε_low as the trainer uses it.
    public var epsilonLow: Double { epsilon }
    /// ε_high as the trainer uses it: `epsilon_high`, or `epsilon` when unset.
    public var effectiveEpsilonHigh: Double { epsilonHigh ?? epsilon }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case lossType = "loss_type", beta, epsilon, epsilonHigh = "epsilon_high", delta
        case importanceSamplingLevel = "importance_sampling_level", scaleRewards = "scale_rewards"
        case multiObjectiveAggregation = "multi_objective_aggregation", rewardWeights = "reward_weights"
        case useBiasCorrectionKL = "use_bias_correction_kl", maskTruncatedCompletions = "mask_truncated_completions"
        case temperature, numIterations = "num_iterations", maxCompletionLength = "max_completion_length"
        case sapoTemperaturePos = "sapo_temperature_pos", sapoTemperatureNeg = "sapo_temperature_neg"
        case vespoKPos = "vespo_k_pos", vespoLambdaPos = "vespo_lambda_pos"
        case vespoKNeg = "vespo_k_neg", vespoLambdaNeg = "vespo_lambda_neg"
    }

    /// Missing keys take TRL's defaults; unknown keys are an error naming the key.
    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue), section: "grpo")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var s = GRPOConfig()
        func read<T: Decodable>(_ k: CodingKeys, _ v: inout T) throws { v = try c.decodeIfPresent(T.self, forKey: k) ?? v }
        try read(.lossType, &s.lossType); try read(.beta, &s.beta); try read(.epsilon, &s.epsilon)
        s.epsilonHigh = try c.decodeIfPresent(Double.self, forKey: .epsilonHigh)
        s.delta = try c.decodeIfPresent(Double.self, forKey: .delta)
        try read(.importanceSamplingLevel, &s.importanceSamplingLevel); try read(.scaleRewards, &s.scaleRewards)
        try read(.multiObjectiveAggregation, &s.multiObjectiveAggregation)
        s.rewardWeights = try c.decodeIfPresent([Double].self, forKey: .rewardWeights)
        try read(.useBiasCorrectionKL, &s.useBiasCorrectionKL); try read(.maskTruncatedCompletions, &s.maskTruncatedCompletions)
        try read(.temperature, &s.temperature); try read(.numIterations, &s.numIterations)
        try read(.maxCompletionLength, &s.maxCompletionLength)
        try read(.sapoTemperaturePos, &s.sapoTemperaturePos); try read(.sapoTemperatureNeg, &s.sapoTemperatureNeg)
        try read(.vespoKPos, &s.vespoKPos); try read(.vespoLambdaPos, &s.vespoLambdaPos)
        try read(.vespoKNeg, &s.vespoKNeg); try read(.vespoLambdaNeg, &s.vespoLambdaNeg)
        self = s
    }

    /// Cross-field checks (NaN fails every range). `name` spells a setting (TRL's snake_case key) the
    /// way the caller's users know it: CLI flags by default; campaigns pass `algorithm.grpo.KEY`.
    public func validate(name: (String) -> String = DPOLossConfig.flag) throws {
        try checkCommon(beta: beta, epsilon: epsilon, epsilonHigh: epsilonHigh, temperature: temperature,
                        numIterations: numIterations, maxCompletionLength: maxCompletionLength,
                        rewardWeights: rewardWeights, name: name)
        if let delta {
            // TRL recommends delta > 1 + epsilon; a cap ≤ 1 would stop the gradient of A < 0 even on-policy.
            guard delta.isFinite, delta > 1 else {
                throw JobError("\(name("delta")) must be a finite number > 1 (TRL recommends > 1 + epsilon), got \(delta); omit it to turn the two-sided clip off")
            }
        }
        if lossType == .cispo, epsilonHigh == nil {
            // TRL accepts it but then caps the ratio at 0.2, which is almost never meant.
            throw JobError("\(name("loss_type")) cispo reads \(name("epsilon_high")) as an absolute cap on the ratio (e.g. 5); set it explicitly")
        }
        for (key, v) in [("sapo_temperature_pos", sapoTemperaturePos), ("sapo_temperature_neg", sapoTemperatureNeg)] {
            guard v > 0, v.isFinite else { throw JobError("\(name(key)) must be a positive finite number, got \(v)") }
        }
        for (key, v) in [("vespo_k_pos", vespoKPos), ("vespo_lambda_pos", vespoLambdaPos),
                         ("vespo_k_neg", vespoKNeg), ("vespo_lambda_neg", vespoLambdaNeg)] {
            guard v >= 0, v.isFinite else { throw JobError("\(name(key)) must be a finite number ≥ 0, got \(v)") }
        }
    }
}

/// RLOO settings (TRL 1.16 `RLOOConfig`; defaults are TRL's).
public struct RLOOConfig: Codable, Sendable, Equatable {
    /// Coefficient of the k1 KL folded into the reward (TRL `beta`).
    public var beta: Double = 0.05
    /// Lower clip ε of the sequence ratio (TRL `epsilon`).
    public var epsilon: Double = 0.2
    /// Upper clip ε; nil = `epsilon` (TRL `epsilon_high`).
    public var epsilonHigh: Double? = nil
    /// Whiten the advantages over the whole generation batch (TRL `normalize_advantages`).
    public var normalizeAdvantages: Bool = false
    /// Clamp the summed rewards to [lo, hi] before the KL penalty and the baseline (TRL `reward_clip_range`).
    public var rewardClipRange: [Double]? = nil
    /// Weight of each reward function; nil = 1 for each (TRL `reward_weights`).
    public var rewardWeights: [Double]? = nil
    /// Truncated completions get mask 0 (TRL `mask_truncated_completions`).
    public var maskTruncatedCompletions: Bool = false
    /// Sampling temperature (TRL `temperature`).
    public var temperature: Double = 1
    /// Updates per generation batch (TRL `num_iterations`).
    public var numIterations: Int = 1
    /// Longest completion sampled (TRL `max_completion_length`).
    public var maxCompletionLength: Int = 512

    /// TRL's defaults.
    public init() {}

    /// ε_high as the trainer uses it.
    public var effectiveEpsilonHigh: Double { epsilonHigh ?? epsilon }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case beta, epsilon, epsilonHigh = "epsilon_high", normalizeAdvantages = "normalize_advantages"
        case rewardClipRange = "reward_clip_range", rewardWeights = "reward_weights"
        case maskTruncatedCompletions = "mask_truncated_completions", temperature, numIterations = "num_iterations"
        case maxCompletionLength = "max_completion_length"
    }

    /// Missing keys take TRL's defaults; unknown keys are an error naming the key.
    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue), section: "rloo")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var s = RLOOConfig()
        func read<T: Decodable>(_ k: CodingKeys, _ v: inout T) throws { v = try c.decodeIfPresent(T.self, forKey: k) ?? v }
        try read(.beta, &s.beta); try read(.epsilon, &s.epsilon)
        s.epsilonHigh = try c.decodeIfPresent(Double.self, forKey: .epsilonHigh)
        try read(.normalizeAdvantages, &s.normalizeAdvantages)
        s.rewardClipRange = try c.decodeIfPresent([Double].self, forKey: .rewardClipRange)
        s.rewardWeights = try c.decodeIfPresent([Double].self, forKey: .rewardWeights)
        try read(.maskTruncatedCompletions, &s.maskTruncatedCompletions); try read(.temperature, &s.temperature)
        try read(.numIterations, &s.numIterations); try read(.maxCompletionLength, &s.maxCompletionLength)
        self = s
    }

    /// Cross-field checks, errors as `GRPOConfig.validate`.
    public func validate(name: (String) -> String = DPOLossConfig.flag) throws {
        try checkCommon(beta: beta, epsilon: epsilon, epsilonHigh: epsilonHigh, temperature: temperature,
                        numIterations: numIterations, maxCompletionLength: maxCompletionLength,
                        rewardWeights: rewardWeights, name: name)
        if let r = rewardClipRange {
            guard r.count == 2, r[0].isFinite, r[1].isFinite, r[0] < r[1] else {
                throw JobError("\(name("reward_clip_range")) must be two finite numbers [lo, hi] with lo < hi, got \(r)")
            }
        }
    }
}

/// The checks GRPO and RLOO share.
private func checkCommon(beta: Double, epsilon: Double, epsilonHigh: Double?, temperature: Double, numIterations: Int,
                         maxCompletionLength: Int, rewardWeights: [Double]?, name: (String) -> String) throws {
    guard beta >= 0, beta.isFinite else { throw JobError("\(name("beta")) must be a finite number ≥ 0, got \(beta)") }
    guard epsilon >= 0, epsilon < 1 else {
        throw JobError("\(name("epsilon")) must be in [0, 1) (the ratio is clipped below at 1 − epsilon), got \(epsilon)")
    }
    if let e = epsilonHigh {
        guard e >= 0, e.isFinite else { throw JobError("\(name("epsilon_high")) must be a finite number ≥ 0, got \(e)") }
    }
    guard temperature > 0, temperature.isFinite else {
        throw JobError("\(name("temperature")) must be a positive finite number, got \(temperature)")
    }
    guard numIterations >= 1 else { throw JobError("\(name("num_iterations")) must be ≥ 1, got \(numIterations)") }
    guard maxCompletionLength >= 1 else {
        throw JobError("\(name("max_completion_length")) must be ≥ 1, got \(maxCompletionLength)")
    }
    if let w = rewardWeights, let bad = w.firstIndex(where: { !$0.isFinite }) {
        throw JobError("\(name("reward_weights"))[\(bad)] must be finite, got \(w[bad])")
    }
}

/// Throws a decoding error naming the first key of `decoder`'s object that is not in `known`.
func rejectUnknownKeys(_ decoder: Decoder, known: [String], section: String) throws {
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
    let c = try decoder.container(keyedBy: AnyKey.self)
    if let bad = c.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
        throw DecodingError.dataCorrupted(.init(
            codingPath: decoder.codingPath + [AnyKey(stringValue: bad)],
            debugDescription: "unknown \(section) setting '\(bad)'; known: \(known.joined(separator: ", "))"))
    }
}
