// The `algorithm:` section, flat as users write it (`algorithm: {type: dpo, beta: 0.1, …}`) and
// decoded per type into the typed settings Training uses: the optimizer (OptimizerOptions), DPO's
// loss (DPOLossConfig) and PPO's (PPOConfig plus the campaign's KL control and value model). Every
// default is the field's own; closed sets are enums; docs/config.md lists the keys.
//
// A key of another algorithm is an error naming it and its line, except at its default value:
// config.yaml files that Rondo wrote before the per-type form hold every key.

import Foundation
import Training

/// Which algorithm updates the policy each round (RoundAlgorithms.registry maps it to its round).
public enum AlgorithmKind: String, Codable, Sendable, CaseIterable { case dpo, ppo, grpo, rloo }

/// PPO's settings (type ppo): TRL's PPOConfig names and defaults.
public struct PPOSection: Sendable, Equatable {
    /// kl_estimator, gamma, lam, cliprange, cliprange_value, vf_coef.
    public var loss = PPOConfig()
    /// Coefficient of the per-token KL penalty (the start value when `klTarget` is set).
    public var klCoef: Double = 0.05
    /// Adaptive KL control (Ziegler et al. 2019): target KL per response in nats; nil = fixed coefficient.
    public var klTarget: Double? = nil
    /// Adaptive KL control: horizon in samples.
    public var klHorizon: Double = 10000
    /// The value model's start: `policy` (its trunk with a fresh value head) or a sequence-classification
    /// model directory (e.g. the reward model). nil = the labeller's reward model if it has one, else `policy`.
    public var valueModel: String? = nil
    public init() {}
}

/// How each round updates the policy.
public struct AlgorithmSection: Sendable, Equatable {
    public var type: AlgorithmKind = .dpo
    /// Passes over the round's rows (PPO: TRL's num_ppo_epochs).
    public var epochs: Int = 1
    /// Rows per optimizer step: pairs (DPO) or samples per minibatch (PPO).
    public var batchSize: Int = 16
    /// AdamW (β 0.9, 0.999, ε 1e-8), its schedule and clipping: learning_rate 1e-5, schedule constant
    /// (after `warmup_steps` over the campaign's first optimizer steps), max_grad_norm 1, weight_decay 0.
    public var optimizer: OptimizerOptions = {
        var o = OptimizerOptions(lr: 1e-5)
        o.schedule = .constant
        return o
    }()
    /// How round checkpoints store the policy's AdamW moments (`optimizer_moments`); nil = the
    /// policy's default: bf16 for a LoRA policy, f32 for a full model (Campaign.momentsDType).
    public var optimizerMoments: MomentsDType? = nil
    /// DPO's loss (type dpo): loss_type, beta, label_smoothing, rpo_alpha.
    public var dpo = DPOLossConfig()
    /// PPO (type ppo).
    public var ppo = PPOSection()
    /// GRPO (type grpo), nested under `grpo:` with TRL's GRPOConfig names (its `loss_type` and `beta`
    /// mean other things than DPO's).
    public var grpo = GRPOConfig()
    /// RLOO (type rloo), nested under `rloo:` with TRL's RLOOConfig names.
    public var rloo = RLOOConfig()
    public init() {}
}

/// The keys of `algorithm:`; `owner` is the algorithm a key belongs to (nil: every algorithm).
enum AlgorithmKey: String, CodingKey, CaseIterable {
    case type, epochs, batchSize = "batch_size", learningRate = "learning_rate", schedule, warmupSteps = "warmup_steps"
    case maxGradNorm = "max_grad_norm", weightDecay = "weight_decay", optimizerMoments = "optimizer_moments"
    case lossType = "loss_type", beta, labelSmoothing = "label_smoothing", rpoAlpha = "rpo_alpha"
    case klCoef = "kl_coef", klEstimator = "kl_estimator", klTarget = "kl_target", klHorizon = "kl_horizon", gamma, lam
    case cliprange, cliprangeValue = "cliprange_value", vfCoef = "vf_coef", valueModel = "value_model"
    case grpo, rloo

    var owner: AlgorithmKind? {
        switch self {
        case .lossType, .beta, .labelSmoothing, .rpoAlpha: return .dpo
        case .klCoef, .klEstimator, .klTarget, .klHorizon, .gamma, .lam, .cliprange, .cliprangeValue, .vfCoef, .valueModel: return .ppo
        case .grpo: return .grpo
        case .rloo: return .rloo
        default: return nil
        }
    }
}

extension KeyedDecodingContainer {
    /// One of a closed set, by its name; an unknown name is an error listing the choices.
    func choice<T: RawRepresentable & CaseIterable>(_ key: Key, _ fallback: T) throws -> T where T.RawValue == String {
        guard let s = try decodeIfPresent(String.self, forKey: key) else { return fallback }
        guard let v = T(rawValue: s) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription:
                "must be \(T.allCases.map(\.rawValue).joined(separator: ", ")) (found '\(s)')")
        }
        return v
    }
}

extension AlgorithmSection: Codable {
    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, AlgorithmKey.self)
        let c = try decoder.container(keyedBy: AlgorithmKey.self)
        type = try c.choice(.type, type)
        epochs = try c.value(.epochs, epochs); batchSize = try c.value(.batchSize, batchSize)
        optimizer.lr = try c.value(.learningRate, optimizer.lr); optimizer.schedule = try c.choice(.schedule, optimizer.schedule)
        optimizer.warmupSteps = try c.value(.warmupSteps, optimizer.warmupSteps)
        optimizer.maxGradNorm = try c.value(.maxGradNorm, optimizer.maxGradNorm)
        optimizer.adamw.weightDecay = try c.value(.weightDecay, optimizer.adamw.weightDecay)
        if c.contains(.optimizerMoments) { optimizerMoments = try c.choice(.optimizerMoments, MomentsDType.f32) }
        dpo.lossType = try c.choice(.lossType, dpo.lossType); dpo.beta = try c.value(.beta, dpo.beta)
        dpo.labelSmoothing = try c.value(.labelSmoothing, dpo.labelSmoothing); dpo.rpoAlpha = try c.value(.rpoAlpha, dpo.rpoAlpha)
        ppo.klCoef = try c.value(.klCoef, ppo.klCoef); ppo.loss.klEstimator = try c.choice(.klEstimator, ppo.loss.klEstimator)
        ppo.klTarget = try c.decodeIfPresent(Double.self, forKey: .klTarget); ppo.klHorizon = try c.value(.klHorizon, ppo.klHorizon)
        ppo.loss.gamma = try c.value(.gamma, ppo.loss.gamma); ppo.loss.lam = try c.value(.lam, ppo.loss.lam)
        ppo.loss.cliprange = try c.value(.cliprange, ppo.loss.cliprange)
        ppo.loss.cliprangeValue = try c.value(.cliprangeValue, ppo.loss.cliprangeValue)
        ppo.loss.vfCoef = try c.value(.vfCoef, ppo.loss.vfCoef); ppo.valueModel = try c.decodeIfPresent(String.self, forKey: .valueModel)
        grpo = try c.value(.grpo, grpo)
        rloo = try c.value(.rloo, rloo)
        let defaults = AlgorithmSection()
        let changed: [AlgorithmKind: Bool] = [.dpo: dpo != defaults.dpo, .ppo: ppo != defaults.ppo, .grpo: grpo != defaults.grpo,
                                              .rloo: rloo != defaults.rloo]
        for k in c.allKeys.compactMap({ AlgorithmKey(rawValue: $0.stringValue) }) {
            guard let owner = k.owner, owner != type, changed[owner] ?? true else { continue }
            let keys = AlgorithmKey.allCases.filter { $0.owner == owner }.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(forKey: k, in: c, debugDescription:
                "applies to type \(owner.rawValue) (its keys: \(keys)), but this algorithm is \(type.rawValue); remove it")
        }
    }

    /// The flat form with the keys of `type` only.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AlgorithmKey.self)
        try c.encode(type, forKey: .type); try c.encode(epochs, forKey: .epochs); try c.encode(batchSize, forKey: .batchSize)
        try c.encode(optimizer.lr, forKey: .learningRate); try c.encode(optimizer.schedule, forKey: .schedule)
        try c.encode(optimizer.warmupSteps, forKey: .warmupSteps); try c.encode(optimizer.maxGradNorm, forKey: .maxGradNorm)
        try c.encode(optimizer.adamw.weightDecay, forKey: .weightDecay)
        try c.encodeIfPresent(optimizerMoments, forKey: .optimizerMoments)
        if type == .dpo {
            try c.encode(dpo.lossType, forKey: .lossType); try c.encode(dpo.beta, forKey: .beta)
            try c.encode(dpo.labelSmoothing, forKey: .labelSmoothing); try c.encode(dpo.rpoAlpha, forKey: .rpoAlpha)
        }
        if type == .ppo {
            try c.encode(ppo.klCoef, forKey: .klCoef); try c.encode(ppo.loss.klEstimator, forKey: .klEstimator)
            try c.encodeIfPresent(ppo.klTarget, forKey: .klTarget); try c.encode(ppo.klHorizon, forKey: .klHorizon)
            try c.encode(ppo.loss.gamma, forKey: .gamma); try c.encode(ppo.loss.lam, forKey: .lam)
            try c.encode(ppo.loss.cliprange, forKey: .cliprange); try c.encode(ppo.loss.cliprangeValue, forKey: .cliprangeValue)
            try c.encode(ppo.loss.vfCoef, forKey: .vfCoef); try c.encodeIfPresent(ppo.valueModel, forKey: .valueModel)
        }
        if type == .grpo { try c.encode(grpo, forKey: .grpo) }
        if type == .rloo { try c.encode(rloo, forKey: .rloo) }
    }
}
