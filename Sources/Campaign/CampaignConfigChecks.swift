// Checks of a campaign config beyond its types: every number finite and in its range (NaN fails
// every range), cross-field rules, Training's own checks of each section (`validate(name:)` of the
// optimizer, the run, and the algorithm's loss, through the algorithm's `validate`),
// no key given twice in a mapping, and error messages that name the key, its line and the value
// found.

import Foundation
import Sampling
import Training
import Yams

extension CampaignConfig {
    /// Every numeric setting with its key; each must be finite.
    var numbers: [(String, Double)] {
        let a = algorithm, l = alarms
        var out: [(String, Double)] = [
            ("sampling.temperature", Double(sampling.temperature)), ("sampling.top_p", Double(sampling.topP)),
            ("labeller.timeout_s", labeller.timeoutS), ("pairs.min_margin", Double(pairs.minMargin)),
            ("algorithm.beta", a.dpo.beta), ("algorithm.label_smoothing", a.dpo.labelSmoothing),
            ("algorithm.learning_rate", a.optimizer.lr), ("algorithm.max_grad_norm", a.optimizer.maxGradNorm),
            ("algorithm.weight_decay", a.optimizer.adamw.weightDecay), ("algorithm.rpo_alpha", a.dpo.rpoAlpha),
            ("algorithm.kl_coef", a.ppo.klCoef), ("algorithm.kl_horizon", a.ppo.klHorizon), ("algorithm.gamma", a.ppo.loss.gamma),
            ("algorithm.lam", a.ppo.loss.lam), ("algorithm.cliprange", a.ppo.loss.cliprange),
            ("algorithm.cliprange_value", a.ppo.loss.cliprangeValue), ("algorithm.vf_coef", a.ppo.loss.vfCoef),
            ("alarms.length_score_correlation", l.lengthScoreCorrelation),
            ("alarms.pair_length_gap", l.pairLengthGap), ("alarms.distinct_2_min", l.distinct2Min), ("alarms.kl_max", l.klMax),
        ]
        if let t = a.ppo.klTarget { out.append(("algorithm.kl_target", t)) }
        return out
    }

    /// Checks values across fields; errors name the key.
    public func validate() throws {
        func bad(_ key: String, _ why: String) -> CampaignError { CampaignError("config: '\(key)' \(why)", key: key) }
        for (key, v) in numbers where !v.isFinite { throw bad(key, "is \(v); every number in the config must be finite") }
        if prompts.perRound < 1 { throw bad("prompts.per_round", "must be ≥ 1") }
        if let l = prompts.evalLimit, l < 1 { throw bad("prompts.eval_limit", "must be ≥ 1 (or omitted for all)") }
        try trainingCheck(section: "sampling", ["stop_strings": "stop"]) { try sampling.samplingConfig.validate(name: $0) }
        try labeller.validate(key: "labeller", bad)
        try labeller.refresh?.validate(bad)
        if pairs.maxPerPrompt < 1 { throw bad("pairs.max_per_prompt", "must be ≥ 1") }
        if pairs.minMargin < 0 { throw bad("pairs.min_margin", "must be ≥ 0") }
        try validatePairwise(bad)
        try trainingCheck(["lr": "learning_rate"]) { try algorithm.optimizer.validate(name: $0) }
        var run = RunOptions()
        run.epochs = algorithm.epochs; run.batchSize = algorithm.batchSize
        try trainingCheck { try run.validate(name: $0) }
        if algorithm.optimizer.lr <= 0 { throw bad("algorithm.learning_rate", "must be > 0") }
        if algorithm.optimizer.schedule != .constant {
            throw bad("algorithm.schedule", "must be 'constant' (after warmup_steps over the campaign's first updates); found '\(algorithm.optimizer.schedule.rawValue)'")
        }
        try validateSamplingPolicy(bad)
        try validatePolicy(bad)
        if algorithm.type == .ppo && labeller.adapter != nil && algorithm.ppo.valueModel == nil {
            throw bad("algorithm.value_model", "must be given when the reward model is a LoRA adapter (labeller.adapter): PPO's value model starts from a full model; set it to 'policy' or a model directory (e.g. the merged reward model from `rondo merge`)")
        }
        try RoundAlgorithms.type(of: algorithm.type).validate(self, bad)
        if let r = rounds, r < 1 { throw bad("rounds", "must be ≥ 1 or 'unlimited'") }
        if threads < 1 { throw bad("threads", "must be ≥ 1") }
        try retention?.validate(bad)
    }

    /// Runs one of Training's (or Sampling's) `validate(name:)` with the campaign's key names
    /// (`rename` maps the module's name to the campaign's); its error becomes a CampaignError naming the key, which
    /// the message then shows with its line.
    func trainingCheck(section: String = "algorithm", _ rename: [String: String] = [:],
                       _ body: ((String) -> String) throws -> Void) throws {
        var named: [String] = []
        do {
            try body { key in
                let k = "\(section).\(rename[key] ?? key)"
                named.append(k)
                return "'\(k)'"
            }
        } catch let e as JobError {
            throw CampaignError("config: \(e.description)", key: named.first)
        } catch let e as SamplingError {
            throw CampaignError("config: \(e.description)", key: named.first)
        }
    }
}

// MARK: YAML structure and messages

/// Throws for a key given twice in one mapping (YAML parsers keep the last silently).
func rejectDuplicateKeys(_ node: Node, path: String = "") throws {
    switch node {
    case .mapping(let m):
        var seen: [String: Node] = [:]
        for (k, v) in m {
            let name = k.string ?? "\(k)"
            let key = path.isEmpty ? name : "\(path).\(name)"
            if let first = seen[name] {
                let lines = [first.mark, k.mark].map { $0.map { String($0.line) } ?? "?" }
                throw CampaignError("'\(key)' is given twice (lines \(lines[0]) and \(lines[1])); keep one")
            }
            seen[name] = k
            try rejectDuplicateKeys(v, path: key)
        }
    case .sequence(let s):
        for (i, v) in s.enumerated() { try rejectDuplicateKeys(v, path: "\(path)[\(i)]") }
    default: break
    }
}

/// The node at a dotted key path (`algorithm.beta`), if the YAML gives it.
func node(at key: String, in root: Node) -> Node? {
    var n: Node? = root
    for part in key.split(separator: ".") { n = n?.mapping?[String(part)] }
    return n
}

/// A validation error with the key's line added: "'algorithm.beta' (line 7) must be > 0".
func describe(_ e: CampaignError, in root: Node) -> String {
    let text = e.description.hasPrefix("config: ") ? String(e.description.dropFirst(8)) : e.description
    guard let key = e.key, let line = node(at: key, in: root)?.mark?.line else { return text }
    return text.replacingOccurrences(of: "'\(key)'", with: "'\(key)' (line \(line))", options: [], range: text.range(of: "'\(key)'"))
}

/// A decoding error as "key path (line N): what", quoting the value found.
func describe(_ e: DecodingError, in root: Node) -> String {
    let (path, what): ([CodingKey], String)
    var expected: Any.Type? = nil
    switch e {
    case .keyNotFound(let k, let c): (path, what) = (c.codingPath + [k], "is required but missing")
    case .typeMismatch(let t, let c): (path, what, expected) = (c.codingPath, "has the wrong type (expected \(t)): \(c.debugDescription)", t)
    case .valueNotFound(let t, let c): (path, what, expected) = (c.codingPath, "has no value (expected \(t))", t)
    case .dataCorrupted(let c): (path, what) = (c.codingPath, c.debugDescription)
    @unknown default: return "\(e)"
    }
    let key = path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    var node: Node? = root
    for k in path {
        if let i = k.intValue { node = node?.sequence.flatMap { i < $0.count ? $0[i] : nil } }
        else { node = node?.mapping?[k.stringValue] }
    }
    let line = (node?.mark?.line).map { " (line \($0))" } ?? ""
    if let expected, let found = node.flatMap(foundValue) {
        return "'\(key)'\(line) is \(found), not \(typeName(expected))"
    }
    return "'\(key)'\(line) \(what)"
}

/// How a value that failed to decode reads in a message: the scalar quoted, or its kind; nil for
/// an empty value (which the decoder reports as missing).
private func foundValue(_ node: Node) -> String? {
    switch node {
    case .scalar(let s): return s.string.isEmpty || s.string == "~" || s.string == "null" ? nil : "\"\(s.string)\""
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    }
}

private func typeName(_ t: Any.Type) -> String {
    switch "\(t)" {
    case "Int", "Int32", "Int64", "UInt64", "UInt32": return "an integer"
    case "Double", "Float": return "a number"
    case "Bool": return "true or false"
    case "String": return "a string"
    case "Scalar": return "a single value"
    case let s where s.hasPrefix("Array<"): return "a list"
    default: return "\(t)"
    }
}

extension LabellerSection {
    /// Checks of one labeller section (the campaign's, or a refresh's gold one at `key`).
    func validate(key k: String, _ bad: (String, String) -> CampaignError) throws {
        switch type {
        case .command:
            if command?.isEmpty ?? true { throw bad("\(k).command", "is required for type command (program and arguments)") }
            if timeoutS <= 0 || !timeoutS.isFinite { throw bad("\(k).timeout_s", "must be a finite number > 0") }
            if maxRestarts < 0 { throw bad("\(k).max_restarts", "must be ≥ 0") }
        case .rewardModel:
            if model == nil { throw bad("\(k).model", "is required for type reward_model (a model directory)") }
        case .http:
            try http?.validate { key, why in bad("\(k).\(key)", why) }
        case .verifier: break
        }
        if adapter != nil && type != .rewardModel {
            throw bad("\(k).adapter", "is only for type reward_model (a reward-model LoRA adapter on its model); this labeller is '\(type.rawValue)'")
        }
        if adapter != nil && refresh != nil {
            throw bad("\(k).refresh", "trains a full reward model; it cannot refresh a LoRA adapter (labeller.adapter) yet: merge the adapter first (`rondo merge`) or remove refresh")
        }
        if type != .rewardModel, refresh != nil {
            throw bad("\(k).refresh", "is only for type reward_model (the model it trains further); this labeller is '\(type.rawValue)'")
        }
    }
}
