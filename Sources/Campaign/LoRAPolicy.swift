// LoRA policies in a campaign (docs/lora.md): `policy: {base: DIR, lora: {r, alpha, …}}` trains a
// new PEFT adapter on a frozen base, `policy: {base: DIR, adapter: DIR}` continues one. One base is
// held in memory for the policy (adapter on), the reference (adapter off; with `reference:
// previous_round`, the base with a copy of the previous round's adapter) and the sampler (which
// merges W + s·B·A into its own tiled copy). Round checkpoints hold the adapter (policy/, PEFT
// files) and its AdamW state only; the base is pinned by path and SHA-256 in state.json and in
// every round_state.json. DPO, GRPO and RLOO train the adapter; PPO refuses a LoRA policy for now.

import Foundation
import Model
import Training

/// `policy.lora`: a new adapter (PEFT's LoraConfig keys; defaults are PEFT's).
public struct PolicyLoRASection: Codable, Sendable, Equatable {
    public var r: Int = 8
    public var alpha: Double = 8
    /// Projection names (q_proj … down_proj) or ["all-linear"]; YAML may give the string `all-linear`.
    public var targetModules: [String] = ["q_proj", "v_proj"]
    public var useRSLoRA = false
    /// Must be 0 (reproducible rounds); kept only to refuse other values by name.
    public var loraDropout: Double = 0
    enum CodingKeys: String, CodingKey, CaseIterable {
        case r, alpha, targetModules = "target_modules", useRSLoRA = "use_rslora", loraDropout = "lora_dropout"
    }

    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PolicyLoRASection()
        r = try c.value(.r, d.r); alpha = try c.value(.alpha, d.alpha)
        if let one = try? c.decode(String.self, forKey: .targetModules) {
            targetModules = [one]
        } else {
            targetModules = try c.value(.targetModules, d.targetModules)
        }
        useRSLoRA = try c.value(.useRSLoRA, d.useRSLoRA); loraDropout = try c.value(.loraDropout, d.loraDropout)
    }

    public init() {}

    /// The adapter's shape; errors name the key.
    func loraConfig(_ bad: (String, String) -> CampaignError) throws -> LoRAConfig {
        if loraDropout != 0 {
            throw bad("policy.lora.lora_dropout", "is \(loraDropout); campaigns train with lora_dropout 0 (rounds must be reproducible), set it to 0 or remove it")
        }
        if r < 1 { throw bad("policy.lora.r", "must be ≥ 1") }
        if !(alpha > 0) || !alpha.isFinite { throw bad("policy.lora.alpha", "must be a positive number") }
        let targets: [LoRATarget]
        do { targets = try LoRATarget.parse(targetModules, what: "policy.lora.target_modules") } catch let e as ModelError {
            throw bad("policy.lora.target_modules", String(e.description.drop { $0 != ":" }.dropFirst(2)))
        }
        do { return try LoRAConfig(r: r, alpha: alpha, targets: targets, useRSLoRA: useRSLoRA) } catch let e as ModelError {
            throw bad("policy.lora", e.description)
        }
    }
}

/// The mapping form of `policy:`.
struct PolicyMapping: Codable {
    var base: String
    var lora: PolicyLoRASection?
    var adapter: String?
    enum CodingKeys: String, CodingKey, CaseIterable { case base, lora, adapter }

    init(base: String, lora: PolicyLoRASection?, adapter: String?) { self.base = base; self.lora = lora; self.adapter = adapter }

    init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        base = try c.decode(String.self, forKey: .base)
        lora = try c.decodeIfPresent(PolicyLoRASection.self, forKey: .lora)
        adapter = try c.decodeIfPresent(String.self, forKey: .adapter)
    }
}

extension CampaignConfig {
    /// Whether the policy is a LoRA adapter on a frozen base (`policy` is then the base).
    public var isLoRA: Bool { lora != nil || adapter != nil }

    /// Decodes `policy:`: a directory (a full model), or {base, lora | adapter}.
    static func decodePolicy(_ c: KeyedDecodingContainer<CodingKeys>) throws -> PolicyMapping {
        if let dir = try? c.decode(String.self, forKey: .policy) { return PolicyMapping(base: dir, lora: nil, adapter: nil) }
        return try c.decode(PolicyMapping.self, forKey: .policy)
    }

    func encodePolicy(_ c: inout KeyedEncodingContainer<CodingKeys>) throws {
        if isLoRA {
            try c.encode(PolicyMapping(base: policy, lora: lora, adapter: adapter), forKey: .policy)
        } else {
            try c.encode(policy, forKey: .policy)
        }
    }

    /// The checks of a LoRA policy; `bad(key, message)` makes the error.
    func validatePolicy(_ bad: (String, String) -> CampaignError) throws {
        guard isLoRA else { return }
        if lora != nil && adapter != nil {
            throw bad("policy", "gives both 'lora' (start a new adapter) and 'adapter' (continue one); keep one of them")
        }
        _ = try lora?.loraConfig(bad)
        if algorithm.type == .ppo {
            throw bad("algorithm.type", "is ppo, but the policy is a LoRA adapter; PPO with a LoRA policy is not implemented (its value model would need a decision: see docs/lora.md); use dpo, grpo or rloo, or a full model as 'policy'")
        }
    }
}

/// A campaign's policy or reference: a full model, or a frozen base with a LoRA adapter on.
struct PolicyModel {
    let model: LlamaModel
    let adapter: LoRAAdapter?

    /// The layout of what training updates (the adapter's tensors, or every parameter).
    var trainableLayout: ParameterLayout { adapter?.layout ?? model.layout }

    /// Activations for a forward with the adapter on over up to `rows` rows (nil without an adapter).
    func activations(rows: Int) -> LoRAActivations? { adapter.map { LoRAActivations(adapter: $0, maxRows: rows) } }
}

extension Campaign {
    /// The policy a campaign starts from: the model, or the base with the configured adapter (a new
    /// one drawn from the campaign's seed, or the `policy.adapter` directory).
    static func startingAdapter(_ config: CampaignConfig, base: LlamaConfig) throws -> LoRAAdapter? {
        func bad(_ key: String, _ why: String) -> CampaignError { CampaignError("config: '\(key)' \(why)", key: key) }
        if let section = config.lora {
            let a = LoRAAdapter(config: try section.loraConfig(bad), model: base)
            a.initialize(seed: config.seed)
            return a
        }
        guard let dir = config.adapter else { return nil }
        do { return try LoRAAdapter.load(from: URL(fileURLWithPath: dir), model: base) } catch let e as ModelError {
            throw CampaignError("policy.adapter: \(e.description)", key: "policy.adapter")
        }
    }

    /// The starting policy (round 0's).
    var initialPolicy: PolicyModel { PolicyModel(model: initial, adapter: initialAdapter) }

    /// The reference of a round whose policy starts as `policy`: the starting policy (`initial`; for
    /// LoRA the base with the adapter off) or a copy of the previous round's policy.
    func reference(for policy: PolicyModel) -> PolicyModel {
        if config.reference == .initial { return PolicyModel(model: initial, adapter: nil) }
        if let a = policy.adapter { return PolicyModel(model: initial, adapter: a.copy()) }
        return PolicyModel(model: LlamaModel(config: policy.model.config, parameters: policy.model.parameters.clone()), adapter: nil)
    }

    /// Round 0's reference: the base with the adapter off (`initial`), or the starting policy itself
    /// (`previous_round`; nothing has trained yet, so no copy is needed).
    var startingReference: PolicyModel { config.reference == .initial ? PolicyModel(model: initial, adapter: nil) : initialPolicy }

    /// The checkpoint's weights file in a round directory, which replay compares.
    var checkpointWeights: String { "policy/" + (config.isLoRA ? LoRAAdapter.weightsFile : ModelDirectory.weightsFile) }

    /// The base's pin (path and SHA-256) a LoRA round records in round_state.json.
    var basePin: PinnedInput? { config.isLoRA ? inputs.first { $0.name == "policy" } : nil }
}
