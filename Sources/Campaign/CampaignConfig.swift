// The campaign config (YAML), one Codable struct per section. docs/config.md documents every
// key with its default. Unknown keys and invalid values are errors naming the key and, where
// the YAML parser knows it, the line.

import Foundation
import Labeling
import Sampling
import Yams

/// An error in a campaign's config or state: what, where, what to do.
public struct CampaignError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// The config key (dotted path) the error is about, when it is about one.
    public let key: String?
    public init(_ description: String, key: String? = nil) { self.description = description; self.key = key }
}

/// Which model is the DPO reference in a round.
public enum ReferenceChoice: String, Codable, Sendable { case initial, previousRound = "previous_round" }

public struct PromptsConfig: Codable, Sendable, Equatable {
    /// JSON lines with "prompt" (text) or "prompt_ids", optional "answer" and "id".
    public var train: String
    /// Held-out prompts evaluated after every round (round 0 = the starting policy).
    public var eval: String
    /// Prompts sampled per round (drawn in a seeded order, epoch after epoch).
    public var perRound: Int = 64
    /// Evaluate on at most this many held-out prompts (nil = all).
    public var evalLimit: Int? = nil
    enum CodingKeys: String, CodingKey, CaseIterable { case train, eval, perRound = "per_round", evalLimit = "eval_limit" }
}

/// The campaign's `sampling:` keys: Sampling's own config with the campaign's defaults (8 samples
/// per prompt, 64 rows decoded at once) and its key for stop strings, `stop`. The round sets the
/// seed; stop token ids are the model's. Fields read through: `sampling.n`, `sampling.topP`, ….
@dynamicMemberLookup
public struct SamplingSection: Codable, Sendable, Equatable {
    /// The sampler's settings (seed 0; the round sets its own).
    public var samplingConfig: SamplingConfig
    /// Which weights sample each round (SamplingPolicy.swift).
    public var policy: SamplingPolicy = .current

    public init() {
        samplingConfig = SamplingConfig()
        samplingConfig.n = 8
        samplingConfig.batchSize = 64
    }

    public subscript<T>(dynamicMember key: WritableKeyPath<SamplingConfig, T>) -> T {
        get { samplingConfig[keyPath: key] }
        set { samplingConfig[keyPath: key] = newValue }
    }

    /// Strings that end a sample (Sampling's `stop_strings`).
    public var stop: [String] {
        get { samplingConfig.stopStrings }
        set { samplingConfig.stopStrings = newValue }
    }

    /// The keys a campaign accepts: Sampling's, less `seed` and `stop_token_ids`, with `stop`; and `policy`.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case n, temperature, topK = "top_k", topP = "top_p", maxNewTokens = "max_new_tokens", stop, batchSize = "batch_size"
        case policy
    }
}

public enum LabellerKind: String, Codable, Sendable { case verifier, command, rewardModel = "reward_model", http }

public struct LabellerSection: Codable, Sendable, Equatable {
    public var type: LabellerKind = .verifier
    /// command: the judge's name (in labels and errors).
    public var name: String? = nil
    /// command: program and arguments (no shell).
    public var command: [String]? = nil
    /// command: seconds to wait for each reply.
    public var timeoutS: Double = 60
    /// command: restarts allowed over the campaign after a crash or timeout.
    public var maxRestarts: Int = 3
    /// command: the judge's working directory (relative paths: to the config file's directory,
    /// which is the default; `rondo start` records it as an absolute path).
    public var workingDirectory: String? = nil
    /// reward_model: an HF sequence-classification model directory (with `adapter`: the adapter's base).
    public var model: String? = nil
    /// reward_model: a reward-model LoRA adapter on `model` (PEFT SEQ_CLS, e.g. from `rondo rm train --lora-r`).
    public var adapter: String? = nil
    /// Also score the held-out prompts with the verifier (ground truth) when they have answers.
    public var evalVerifier: Bool = true
    /// http: the judge's settings (Labeling's HTTPJudgeConfig; its keys sit in this mapping).
    public var http: HTTPJudgeConfig? = nil
    /// reward_model: train the model further on gold labels during the campaign (RefreshConfig.swift).
    public var refresh: RefreshSection? = nil
    enum CodingKeys: String, CodingKey, CaseIterable {
        case type, name, command, timeoutS = "timeout_s", maxRestarts = "max_restarts", workingDirectory = "working_directory"
        case model, adapter, evalVerifier = "eval_verifier", refresh
    }
}

/// best_vs_worst ranks scored samples; judge_pairwise takes the verdicts of a pairwise HTTP judge
/// (PairwiseJudging.swift).
public enum PairStrategy: String, Codable, Sendable { case bestVsWorst = "best_vs_worst", judgePairwise = "judge_pairwise" }

public struct PairsSection: Codable, Sendable, Equatable {
    public var strategy: PairStrategy = .bestVsWorst
    /// Pairs need score(chosen) − score(rejected) ≥ this.
    public var minMargin: Float = 0
    /// Never pair two responses with equal scores.
    public var skipTies: Bool = true
    public var maxPerPrompt: Int = 1
    /// judge_pairwise: distinct sample pairs asked per prompt (nil = `defaultCandidates`).
    public var candidatesPerPrompt: Int? = nil
    public static let defaultCandidates = 2
    public var candidates: Int { candidatesPerPrompt ?? Self.defaultCandidates }
    enum CodingKeys: String, CodingKey, CaseIterable {
        case strategy, minMargin = "min_margin", skipTies = "skip_ties", maxPerPrompt = "max_per_prompt"
        case candidatesPerPrompt = "candidates_per_prompt"
    }
}

public enum AlarmAction: String, Codable, Sendable { case warn, stop }

public struct AlarmsSection: Codable, Sendable, Equatable {
    /// Length bias: |corr(response length, score)| above this.
    public var lengthScoreCorrelation: Double = 0.5
    /// Length bias: mean chosen − rejected length (tokens) above this.
    public var pairLengthGap: Double = 8
    /// Mode collapse: held-out distinct-2 below this.
    public var distinct2Min: Double = 0.05
    /// KL drift: held-out KL(policy ‖ reference) per response above this (nats).
    public var klMax: Double = 10
    public var action: AlarmAction = .warn
    enum CodingKeys: String, CodingKey, CaseIterable {
        case lengthScoreCorrelation = "length_score_correlation", pairLengthGap = "pair_length_gap"
        case distinct2Min = "distinct_2_min", klMax = "kl_max", action
    }
}

/// The whole campaign.
public struct CampaignConfig: Codable, Sendable, Equatable {
    /// The starting policy: an HF model directory; for a LoRA policy, its frozen base (LoRAPolicy.swift).
    public var policy: String
    /// `policy.lora`: train a new LoRA adapter on the base `policy`.
    public var lora: PolicyLoRASection? = nil
    /// `policy.adapter`: continue this PEFT adapter on the base `policy`.
    public var adapter: String? = nil
    public var reference: ReferenceChoice = .initial
    public var prompts: PromptsConfig
    public var sampling = SamplingSection()
    public var labeller = LabellerSection()
    public var pairs = PairsSection()
    public var algorithm = AlgorithmSection()
    public var alarms = AlarmsSection()
    /// Rounds to run (nil = unlimited, written as `rounds: unlimited`).
    public var rounds: Int? = 10
    public var seed: UInt64 = 0
    public var threads: Int = 2
    /// Which rounds keep their optimizer (and value-model) state; nil = every round (Retention.swift).
    public var retention: RetentionSection? = nil
    enum CodingKeys: String, CodingKey, CaseIterable {
        case policy, reference, prompts, sampling, labeller, pairs, algorithm, alarms, rounds, seed, threads, retention
    }
}

// MARK: Strict decoding

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Throws for any key of this mapping that `K` does not declare.
func rejectUnknownKeys<K: CodingKey & CaseIterable>(_ decoder: Decoder, _ keys: K.Type) throws {
    try rejectUnknownKeys(decoder, known: Set(K.allCases.map(\.stringValue)))
}

/// Throws for any key of this mapping not in `known`.
func rejectUnknownKeys(_ decoder: Decoder, known: Set<String>) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    for k in c.allKeys where !known.contains(k.stringValue) {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [k],
            debugDescription: "unknown key '\(k.stringValue)'; expected one of \(known.sorted().joined(separator: ", "))"))
    }
}

extension KeyedDecodingContainer {
    func value<T: Decodable>(_ key: Key, _ fallback: T) throws -> T { try decodeIfPresent(T.self, forKey: key) ?? fallback }
}

extension PromptsConfig {
    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        train = try c.decode(String.self, forKey: .train)
        eval = try c.decode(String.self, forKey: .eval)
        perRound = try c.value(.perRound, 64)
        evalLimit = try c.decodeIfPresent(Int.self, forKey: .evalLimit)
    }
}

extension SamplingSection {
    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        samplingConfig = try SamplingConfig(from: decoder, over: SamplingSection().samplingConfig)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stop = try c.value(.stop, [])
        policy = try c.value(.policy, .current)
    }

    /// The campaign's keys, as the config file has them.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        let s = samplingConfig
        try c.encode(s.n, forKey: .n); try c.encode(s.temperature, forKey: .temperature); try c.encode(s.topK, forKey: .topK)
        try c.encode(s.topP, forKey: .topP); try c.encode(s.maxNewTokens, forKey: .maxNewTokens)
        try c.encode(s.stopStrings, forKey: .stop); try c.encode(s.batchSize, forKey: .batchSize)
        // Without `policy` when it is the default: a resolved config.yaml written before the key
        // existed stays byte-identical (its SHA-256 is in every buffer header).
        if policy != .current { try c.encode(policy, forKey: .policy) }
    }
}

extension LabellerSection {
    /// The keys of `type: http`: the judge's own and the common type, name and eval_verifier.
    static let httpKeys = Set(HTTPJudgeConfig.CodingKeys.allCases.map(\.stringValue) + ["type", "name", "eval_verifier"])

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = LabellerSection()
        type = try c.value(.type, d.type)
        if type == .http {
            try rejectUnknownKeys(decoder, known: Self.httpKeys)
            http = try HTTPJudgeConfig(from: decoder)
            name = try c.decodeIfPresent(String.self, forKey: .name)
            evalVerifier = try c.value(.evalVerifier, d.evalVerifier)
            return
        }
        try rejectUnknownKeys(decoder, CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        command = try c.decodeIfPresent([String].self, forKey: .command); timeoutS = try c.value(.timeoutS, d.timeoutS)
        maxRestarts = try c.value(.maxRestarts, d.maxRestarts); model = try c.decodeIfPresent(String.self, forKey: .model)
        adapter = try c.decodeIfPresent(String.self, forKey: .adapter)
        workingDirectory = try c.decodeIfPresent(String.self, forKey: .workingDirectory)
        evalVerifier = try c.value(.evalVerifier, d.evalVerifier)
        refresh = try c.decodeIfPresent(RefreshSection.self, forKey: .refresh)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type); try c.encodeIfPresent(name, forKey: .name)
        try c.encode(evalVerifier, forKey: .evalVerifier)
        if let http { return try http.encode(to: encoder) }
        try c.encodeIfPresent(command, forKey: .command); try c.encode(timeoutS, forKey: .timeoutS)
        try c.encode(maxRestarts, forKey: .maxRestarts); try c.encodeIfPresent(workingDirectory, forKey: .workingDirectory)
        try c.encodeIfPresent(model, forKey: .model); try c.encodeIfPresent(adapter, forKey: .adapter)
        try c.encodeIfPresent(refresh, forKey: .refresh)
    }
}

extension PairsSection {
    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PairsSection()
        strategy = try c.value(.strategy, d.strategy); minMargin = try c.value(.minMargin, d.minMargin)
        skipTies = try c.value(.skipTies, d.skipTies); maxPerPrompt = try c.value(.maxPerPrompt, d.maxPerPrompt)
        candidatesPerPrompt = try c.decodeIfPresent(Int.self, forKey: .candidatesPerPrompt)
    }
}

extension AlarmsSection {
    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AlarmsSection()
        lengthScoreCorrelation = try c.value(.lengthScoreCorrelation, d.lengthScoreCorrelation)
        pairLengthGap = try c.value(.pairLengthGap, d.pairLengthGap); distinct2Min = try c.value(.distinct2Min, d.distinct2Min)
        klMax = try c.value(.klMax, d.klMax); action = try c.value(.action, d.action)
    }
}

extension CampaignConfig {
    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let p = try Self.decodePolicy(c)
        policy = p.base; lora = p.lora; adapter = p.adapter
        reference = try c.value(.reference, .initial)
        prompts = try c.decode(PromptsConfig.self, forKey: .prompts)
        sampling = try c.value(.sampling, SamplingSection())
        labeller = try c.value(.labeller, LabellerSection())
        pairs = try c.value(.pairs, PairsSection())
        algorithm = try c.value(.algorithm, AlgorithmSection())
        alarms = try c.value(.alarms, AlarmsSection())
        if (try? c.decode(String.self, forKey: .rounds)) == "unlimited" {
            rounds = nil
        } else {
            rounds = try c.value(.rounds, 10)
        }
        seed = try c.value(.seed, 0)
        threads = try c.value(.threads, 2)
        retention = try c.decodeIfPresent(RetentionSection.self, forKey: .retention)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try encodePolicy(&c); try c.encode(reference, forKey: .reference)
        try c.encode(prompts, forKey: .prompts); try c.encode(sampling, forKey: .sampling)
        try c.encode(labeller, forKey: .labeller); try c.encode(pairs, forKey: .pairs)
        try c.encode(algorithm, forKey: .algorithm); try c.encode(alarms, forKey: .alarms)
        if let rounds { try c.encode(rounds, forKey: .rounds) } else { try c.encode("unlimited", forKey: .rounds) }
        try c.encode(seed, forKey: .seed); try c.encode(threads, forKey: .threads)
        try c.encodeIfPresent(retention, forKey: .retention)
    }
}

extension CampaignConfig {
    /// Parses YAML text; `source` names the file in errors.
    public static func parse(_ text: String, source: String) throws -> CampaignConfig {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw CampaignError("\(source): not valid YAML (\(error))")
        }
        guard let node else { throw CampaignError("\(source): empty config; at least 'policy' and 'prompts' are required") }
        do {
            try rejectDuplicateKeys(node)
            let config = try YAMLDecoder().decode(CampaignConfig.self, from: text)
            try config.validate()
            return config
        } catch let e as DecodingError {
            throw CampaignError("\(source): \(describe(e, in: node))")
        } catch let e as CampaignError {
            throw CampaignError("\(source): \(describe(e, in: node))")
        }
    }

    public static func load(_ url: URL) throws -> CampaignConfig {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw CampaignError("\(url.path): cannot read the config (\(error.localizedDescription))")
        }
        return try parse(text, source: url.path)
    }

    /// The YAML form of the resolved config (stored in the campaign directory).
    public func yaml() throws -> String { try YAMLEncoder().encode(self) }
}
