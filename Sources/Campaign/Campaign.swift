// The campaign daemon: round after round of sample → label → build pairs → update → evaluate →
// commit, each round committed atomically (CampaignStore) and replayable (RoundUpdate).
// Round 0 evaluates the starting policy, so every later round compares with it.

import Foundation
import Kernels
import Labeling
import Model
import Rollouts
import Sampling
import Templates
import Tokenizers
import Training

/// Per-round state stored in rounds/NNNNNN/round_state.json: what the next round continues from.
public struct RoundState: Codable, Sendable, Equatable {
    public var round: Int
    /// Position in the seeded prompt order where the next round starts.
    public var promptCursor: Int
    public var optimizerStep: Int
    public var reference: String
    /// SHA-256 of this round's policy/model.safetensors.
    public var policySHA256: String
    /// PPO: the KL coefficient the next round uses (the adaptive controller's state).
    public var klCoef: Double? = nil
    enum CodingKeys: String, CodingKey {
        case round, promptCursor = "prompt_cursor", optimizerStep = "optimizer_step", reference
        case policySHA256 = "policy_sha256", klCoef = "kl_coef"
    }
}

/// What `resume`, `replay` (and `start`) may override without changing the campaign's config.
public struct CampaignRunOptions: Sendable {
    /// Threads for matrix products and kernels (nil = the config's `threads`).
    public var threads: Int? = nil
    /// Continue although a pinned input changed (recorded in the next round's metrics).
    public var allowChangedInputs = false
    public init(threads: Int? = nil, allowChangedInputs: Bool = false) {
        self.threads = threads; self.allowChangedInputs = allowChangedInputs
    }
}

/// How a run ended.
public enum CampaignOutcome: Sendable, Equatable {
    case finished(rounds: Int)
    case stopped(afterRound: Int)
    case alarm(round: Int, message: String)
}

public final class Campaign {
    public let store: CampaignStore
    public let config: CampaignConfig
    let configText: String
    let tokenizer: Tokenizer?
    let train: [CampaignPrompt]
    let eval: [CampaignPrompt]
    let labeller: Labeller
    let initial: LlamaModel
    /// Where the starting policy is read from: rounds/000000/policy once round 0 is committed.
    let modelSource: URL
    /// Pinned inputs as they are now, and the changes `--allow-changed-inputs` accepted (recorded by
    /// the next committed round, then pinned).
    let inputs: [PinnedInput]
    var inputChanges: [String]
    let log: (String) -> Void
    /// Set by SIGINT/SIGTERM: finish nothing new, leave at the next safe point.
    public let stop: StopFlag

    /// Opens a campaign directory whose config.yaml exists (written by `start`).
    public init(store: CampaignStore, options: CampaignRunOptions = CampaignRunOptions(), stop: StopFlag = StopFlag(),
                log: @escaping (String) -> Void = { _ in }) throws {
        self.store = store
        self.stop = stop
        self.log = log
        guard let text = try? String(contentsOf: store.configURL, encoding: .utf8) else {
            throw CampaignError("\(store.root.path): no config.yaml; create the campaign with `rondo start CONFIG --dir \(store.root.path)`")
        }
        configText = text
        config = try CampaignConfig.parse(text, source: store.configURL.path)
        Threads.configure(options.threads ?? config.threads)
        if let pins = try Self.recordedInputs(store) {
            let checked = try Self.checkInputs(pins, configText: text, store: store, allowChanged: options.allowChangedInputs)
            inputs = checked.current
            inputChanges = checked.changes
            for c in checked.changes { log("changed input accepted (--allow-changed-inputs): \(c)") }
        } else {
            // A campaign from before pinning: pin what is there now.
            let pins = try Self.inputs(of: config, yaml: text, configDirectory: store.root, store: store)
            try Self.record(pins, in: store)
            inputs = pins
            inputChanges = []
            log("pinned the campaign's inputs in \(store.stateURL.path)")
        }
        let roundZero = try store.committedRounds().first == 0
        let policyDir = roundZero ? store.roundURL(0).appendingPathComponent("policy") : URL(fileURLWithPath: config.policy)
        modelSource = policyDir
        let loaded = try ModelDirectory.load(policyDir)
        guard loaded.config.head == .causalLM else { throw CampaignError("\(policyDir.path): the policy must be a causal LM") }
        initial = LlamaModel(config: loaded.config, parameters: loaded.parameters)
        let tok = policyDir.appendingPathComponent("tokenizer.json")
        tokenizer = FileManager.default.fileExists(atPath: tok.path) ? try Tokenizer(url: tok) : nil
        var template: ModelTemplate??  // loaded at the first conversational prompt
        let chatTemplate: () throws -> ModelTemplate? = {
            if template == nil { template = .some(try ModelTemplate.load(directory: policyDir)) }
            return template ?? nil
        }
        let maxNew = config.sampling.maxNewTokens
        train = try PromptSet.load(URL(fileURLWithPath: config.prompts.train), key: "prompts.train", tokenizer: tokenizer,
                                   config: loaded.config, maxNewTokens: maxNew, needsAnswer: config.labeller.type == .verifier,
                                   template: chatTemplate)
        var ev = try PromptSet.load(URL(fileURLWithPath: config.prompts.eval), key: "prompts.eval", tokenizer: tokenizer,
                                    config: loaded.config, maxNewTokens: maxNew, needsAnswer: false, template: chatTemplate)
        if let limit = config.prompts.evalLimit { ev = Array(ev.prefix(limit)) }
        eval = ev
        labeller = try Self.makeLabeller(config, stop: stop)
    }

    static func makeLabeller(_ c: CampaignConfig, stop: StopFlag = StopFlag()) throws -> Labeller {
        switch c.labeller.type {
        case .verifier: return Verifier()
        case .command:
            let cmd = c.labeller.command!
            return try CommandJudge(name: c.labeller.name ?? URL(fileURLWithPath: cmd[0]).lastPathComponent, command: cmd,
                                    timeout: c.labeller.timeoutS, maxRestarts: c.labeller.maxRestarts,
                                    workingDirectory: c.labeller.workingDirectory.map { URL(fileURLWithPath: $0, isDirectory: true) },
                                    interrupted: { stop.isSet })
        case .http:
            return try HTTPJudge(config: c.labeller.http!, name: c.labeller.name, interrupted: { stop.isSet })
        case .rewardModel:
            let dir = URL(fileURLWithPath: c.labeller.model!)
            let sha = try sha256(of: dir.appendingPathComponent("model.safetensors"))
            return try RewardModelLabeller(directory: dir, weightsSHA256: sha)
        }
    }

    // MARK: Running

    /// Runs rounds until the configured count (or a stop request). Holds the lock throughout.
    public func run() throws -> CampaignOutcome {
        let lock = try CampaignLock(store)
        defer { withExtendedLifetime(lock) {} }
        try store.removeIncompleteRounds()
        try store.rebuildIndex()
        try prune()
        var committed = try store.committedRounds()
        do {
            if committed.isEmpty {
                try runRoundZero()
                committed = [0]
            }
            try store.requireFullState(committed.last!)
            let target = try store.roundsTarget() ?? config.rounds
            while target.map({ committed.last! < $0 }) ?? true {
                if stop.isSet { return .stopped(afterRound: committed.last!) }
                let r = committed.last! + 1
                guard let outcome = try runRound(r) else { return .stopped(afterRound: r - 1) }
                committed.append(r)
                try prune()
                if case .alarm = outcome { return outcome }
            }
        } catch let e as LabelError where e.interrupted {
            // A stop request ended a judge's wait: the round is abandoned, nothing of it committed.
            return .stopped(afterRound: committed.last ?? -1)
        }
        store.writeStatus(round: committed.last!, phase: "finished")
        return .finished(rounds: committed.last!)
    }

    /// Round 0: the starting policy evaluated and checkpointed as it is.
    func runRoundZero() throws {
        log("round 0: evaluating the starting policy")
        store.writeStatus(round: 0, phase: "eval")
        let t0 = Date()
        let evalMetrics = try evaluator(0).evaluate(policy: initial, reference: initial, labeller: labeller,
                                                    useVerifier: config.labeller.evalVerifier || config.labeller.type == .verifier)
        let evalS = Date().timeIntervalSince(t0)
        store.writeStatus(round: 0, phase: "commit")
        let t1 = Date()
        let tmp = try store.beginRound(0)
        let optimizer = AdamW(layout: initial.layout, config: adamwConfig)
        let sha = try saveCheckpoint(initial, optimizer, into: tmp)
        var state = RoundState(round: 0, promptCursor: 0, optimizerStep: 0, reference: config.reference.rawValue, policySHA256: sha)
        if config.algorithm.type == .ppo {
            let value = try initialValueModel()
            try saveValue(value, AdamW(layout: value.layout, config: adamwConfig), into: tmp)
            state.klCoef = config.algorithm.klCoef
        }
        var metrics: [(String, JSONValue)] = [("round", .number(0))] + evalMetrics.map { ($0.0, json($0.1)) }
        metrics += [("time/sample_s", .number(0)), ("time/label_s", .number(0)), ("time/update_s", .number(0)),
                    ("time/eval_s", .number(evalS)), ("time/commit_s", .number(Date().timeIntervalSince(t1)))]
        try finishCommit(0, tmp, state, metrics)
        log("round 0: \(summary(metrics))")
    }

    var adamwConfig: AdamWConfig { AdamWConfig(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: config.algorithm.weightDecay) }

    func evaluator(_ round: Int) -> Evaluator {
        Evaluator(prompts: eval, sampling: config.sampling, tokenizer: tokenizer, seed: roundSeed(round))
    }

    /// The seed of round r's sampling streams.
    func roundSeed(_ r: Int) -> UInt64 { config.seed &+ UInt64(r) &* 0x9E37_79B9_7F4A_7C15 }

    /// Loads round r's checkpoint (weights and optimizer state).
    func loadRound(_ r: Int) throws -> (LlamaModel, AdamW, RoundState) {
        let dir = store.roundURL(r)
        let m = try ModelDirectory.load(dir.appendingPathComponent("policy"))
        let model = LlamaModel(config: m.config, parameters: m.parameters)
        let opt = try AdamW.load(from: dir, layout: model.layout, config: adamwConfig)
        let state = try JSONDecoder().decode(RoundState.self, from: Data(contentsOf: dir.appendingPathComponent("round_state.json")))
        return (model, opt, state)
    }

    /// One round; nil when a stop request arrived before the commit (nothing of it is kept).
    func runRound(_ r: Int) throws -> CampaignOutcome? {
        let (policy, optimizer, prev) = try loadRound(r - 1)
        let reference = config.reference == .initial ? initial : LlamaModel(config: policy.config, parameters: policy.parameters.clone())
        var times: [(String, Double)] = []
        func phase<T>(_ name: String, _ key: String, _ body: () throws -> T) throws -> T {
            store.writeStatus(round: r, phase: name)
            let t = Date()
            defer { times.append((key, Date().timeIntervalSince(t))) }
            return try body()
        }

        // Sample.
        let picked = PromptSet.select(count: config.prompts.perRound, cursor: prev.promptCursor, total: train.count, seed: config.seed)
        var sc = SamplingConfig()
        sc.n = config.sampling.n; sc.temperature = config.sampling.temperature; sc.topK = config.sampling.topK
        sc.topP = config.sampling.topP; sc.maxNewTokens = config.sampling.maxNewTokens; sc.stopStrings = config.sampling.stop
        sc.batchSize = config.sampling.batchSize; sc.seed = roundSeed(r)
        log("round \(r): sampling \(picked.count) prompts × \(sc.n)")
        let samples = try phase("sample", "time/sample_s") {
            try Sampler(model: policy, config: sc, tokenBytes: tokenizer.map { t in { t.bytes($0) } }).generate(picked.map { train[$0].ids })
                .sorted { ($0.promptIndex, $0.sampleIndex) < ($1.promptIndex, $1.sampleIndex) }
        }
        if stop.isSet { return nil }

        // Label, pair, reference log-probs.
        let texts = samples.map { tokenizer?.decode($0.tokens, skipSpecialTokens: true) ?? "" }
        var scores = [Float](repeating: 0, count: samples.count)
        var judged: [JudgeCall] = [], judgeMetrics: [(String, Double)] = []
        try phase("label", "time/label_s") {
            if let judge = labeller as? HTTPJudge {
                (judged, judgeMetrics) = try judgeLabels(judge, r, samples, texts, picked)
                scores = judged.map { $0.score ?? .nan }
                return
            }
            var start = 0
            while start < samples.count {
                let p = samples[start].promptIndex
                var end = start
                while end < samples.count && samples[end].promptIndex == p { end += 1 }
                let prompt = train[picked[p]]
                let request = LabelRequest(prompt: prompt.text, promptIDs: prompt.ids, answer: prompt.answer,
                                           responses: Array(texts[start..<end]), responseIDs: samples[start..<end].map(\.tokens))
                let s: [Float]
                do { s = try labeller.checkedScore(request) } catch let e as LabelError where !e.interrupted {
                    let which = e.response.map { "sample \(start + $0)" } ?? "samples \(start)…\(end - 1)"
                    throw CampaignError("round \(r), \(which) (prompt \(prompt.id.map { "'\($0)'" } ?? "#\(picked[p])")): \(e.description); the round was not committed")
                }
                for k in start..<end { scores[k] = s[k - start] }
                start = end
            }
        }
        if stop.isSet { return nil }
        let ppo = config.algorithm.type == .ppo
        let pairs = ppo ? [] : PairBuilder(config.pairs).build(samples: samples, scores: scores)
        let refLogprobs = try phase("reference", "time/reference_s") {
            try responseLogprobs(reference, prompts: samples.map { train[picked[$0.promptIndex]].ids }, responses: samples.map(\.tokens))
        }

        // Records, written as the round's buffer.
        let tmp = try store.beginRound(r)
        var records: [SampleRecord] = samples.enumerated().map { i, s in
            let prompt = train[picked[s.promptIndex]]
            return SampleRecord(id: i, promptIndex: s.promptIndex, promptID: prompt.id, sampleIndex: s.sampleIndex, prompt: prompt.text,
                                promptIDs: prompt.ids, responseIDs: s.tokens, response: texts[i], logprobs: s.logprobs,
                                refLogprobs: refLogprobs[i], label: label(i, scores, judged),
                                finishReason: s.finishReason.rawValue,
                                seed: SeedStream(seed: sc.seed, stream: UInt64(s.promptIndex) << 20 | UInt64(s.sampleIndex)))
        }

        // PPO: values, advantages and returns (stored in the buffer), and the next KL coefficient.
        var valueModel: (LlamaModel, AdamW)? = nil
        var objective: [(String, Double)] = []
        var klCoef = prev.klCoef
        if ppo {
            let (vm, vopt) = try loadValue(r - 1)
            let values = try phase("values", "time/values_s") {
                try PPOUpdate.values(vm, prompts: records.map(\.promptIDs), responses: records.map(\.responseIDs), width: sc.maxNewTokens)
            }
            let coef = prev.klCoef ?? config.algorithm.klCoef
            objective = try PPOUpdate.attachAdvantages(&records, values: values, width: sc.maxNewTokens, klCoef: coef,
                                                       config: config.algorithm.ppoConfig)
            let kl = objective.first { $0.0 == "objective/kl" }?.1 ?? .nan
            klCoef = nextKLCoef(coef, observedKL: kl, target: config.algorithm.klTarget, horizon: config.algorithm.klHorizon,
                                samples: records.count)
            objective.append(("objective/kl_coef", coef))
            valueModel = (vm, vopt)
        }
        var rollout = BufferSummary()
        try phase("buffer", "time/buffer_s") {
            let w = try BufferWriter(url: tmp.appendingPathComponent("rollouts.jsonl.zst"),
                                     header: BufferHeader(round: r, policySHA256: prev.policySHA256, configSHA256: sha256(configText)))
            for rec in records { try w.append(rec); rollout.add(rec) }
            for p in pairs { try w.append(p); rollout.add(p) }
            try w.finish(timings: Dictionary(uniqueKeysWithValues: times))
        }
        if stop.isSet { return nil }

        // Update (the same function replay runs).
        log(ppo ? "round \(r): \(records.count) samples, PPO update" : "round \(r): \(pairs.count) pairs, updating")
        let trainMetrics = try phase("update", "time/update_s") {
            if let (vm, vopt) = valueModel {
                return try PPOUpdate.run(policy: policy, policyOptimizer: optimizer, value: vm, valueOptimizer: vopt, samples: records,
                                         width: sc.maxNewTokens, algorithm: config.algorithm, seed: config.seed, round: r)
            }
            let (examples, refSums) = try RoundUpdate.examples(samples: records, pairs: pairs)
            return try RoundUpdate.run(model: policy, optimizer: optimizer, examples: examples, referenceSums: refSums,
                                       algorithm: config.algorithm, seed: config.seed, round: r)
        }
        if stop.isSet { return nil }
        let evalMetrics = try phase("eval", "time/eval_s") {
            try evaluator(r).evaluate(policy: policy, reference: reference, labeller: labeller,
                                      useVerifier: config.labeller.evalVerifier || config.labeller.type == .verifier)
        }
        if stop.isSet { return nil }

        // Alarms.
        let rv = Dictionary(rollout.values(), uniquingKeysWith: { a, _ in a })
        let ev = Dictionary(evalMetrics, uniquingKeysWith: { a, _ in a })
        var alarms: [String] = []
        let corr = rv["length_score_corr"]?.double ?? .nan, gap = rv["pair_length_gap"]?.double ?? .nan
        if abs(corr) > config.alarms.lengthScoreCorrelation { alarms.append("length bias: corr(length, score) = \(fmt(corr))") }
        if gap > config.alarms.pairLengthGap { alarms.append("length bias: chosen − rejected length = \(fmt(gap)) tokens") }
        if let d2 = ev["eval/distinct_2"], d2 < config.alarms.distinct2Min { alarms.append("mode collapse: eval distinct-2 = \(fmt(d2))") }
        if let kl = ev["eval/kl_to_reference"], kl > config.alarms.klMax { alarms.append("KL drift: eval KL to reference = \(fmt(kl))") }
        for a in alarms { log("round \(r): ALARM \(a)") }

        // Commit.
        store.writeStatus(round: r, phase: "commit")
        let t = Date()
        let sha = try saveCheckpoint(policy, optimizer, into: tmp)
        if let (vm, vopt) = valueModel { try saveValue(vm, vopt, into: tmp) }
        let cursor = prev.promptCursor + picked.count
        let state = RoundState(round: r, promptCursor: cursor, optimizerStep: optimizer.step, reference: config.reference.rawValue,
                               policySHA256: sha, klCoef: klCoef)
        var metrics: [(String, JSONValue)] = [("round", .number(Double(r)))]
        metrics += evalMetrics.map { ($0.0, json($0.1)) }
        metrics += objective.map { ($0.0, json($0.1)) }
        metrics += trainMetrics.map { ($0.0, json($0.1)) }
        metrics += judgeMetrics.map { ($0.0, json($0.1)) }
        for k in ["score_mean", "length_mean", "length_score_corr", "pair_length_gap", "distinct_2", "duplicate_rate"] {
            metrics.append(("rollout/\(k)", json(rv[k]?.double ?? .nan)))
        }
        metrics.append(("alarms", .array(alarms.map { .string($0) })))
        if !inputChanges.isEmpty { metrics.append(("inputs/changed", .array(inputChanges.map { .string($0) }))) }
        metrics += times.map { ($0.0, .number($0.1)) }
        metrics.append(("time/commit_s", .number(Date().timeIntervalSince(t))))
        metrics.append(("peak_rss_mib", .number(peakRSSMiB())))
        try finishCommit(r, tmp, state, metrics)
        log("round \(r): \(summary(metrics))")
        if !alarms.isEmpty && config.alarms.action == .stop {
            return .alarm(round: r, message: alarms.joined(separator: "; "))
        }
        return .finished(rounds: r)
    }

    /// Writes policy/ and optimizer.safetensors into `dir`; returns the weights' SHA-256.
    @discardableResult
    func saveCheckpoint(_ model: LlamaModel, _ optimizer: AdamW, into dir: URL) throws -> String {
        let p = dir.appendingPathComponent("policy")
        try ModelDirectory.save(config: model.config, parameters: model.parameters, to: p, copyingAuxiliaryFilesFrom: modelSource)
        try optimizer.save(to: dir)
        return try sha256(of: p.appendingPathComponent("model.safetensors"))
    }

    func finishCommit(_ r: Int, _ tmp: URL, _ state: RoundState, _ metrics: [(String, JSONValue)]) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(enc.encode(state), to: tmp.appendingPathComponent("round_state.json"))
        try AtomicFile.write(Data(metricsLine(metrics).utf8), to: tmp.appendingPathComponent("metrics.json"))
        try store.commitRound(r, from: tmp)
        if !inputChanges.isEmpty {
            // Recorded in this round's metrics: the new contents are pinned from now on.
            try Self.record(inputs, in: store)
            inputChanges = []
        }
        try store.rebuildIndex()
        writeReport()
    }

    /// Applies `retention` to the committed rounds.
    func prune() throws {
        let pruned = try store.prune(config.retention)
        if !pruned.isEmpty { log("retention: pruned the full state of round\(pruned.count == 1 ? "" : "s") \(pruned.map(String.init).joined(separator: ", "))") }
    }
}

/// JSON number, or null for NaN/inf (metrics files stay plain JSON for pandas and jq).
func json(_ d: Double) -> JSONValue { d.isFinite ? .number(d) : .null }

/// One JSON object with keys in the given order; integral numbers without a fraction.
func metricsLine(_ m: [(String, JSONValue)]) -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.withoutEscapingSlashes]
    let parts = m.map { k, v -> String in
        let value: String
        if case .number(let d) = v {
            // Counts (round, pairs, steps) print as integers.
            value = d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : jsonNumber(d)
        } else {
            value = String(decoding: (try? enc.encode(v)) ?? Data("null".utf8), as: UTF8.self)
        }
        return "\"\(k)\": \(value)"
    }
    return "{" + parts.joined(separator: ", ") + "}\n"
}

func fmt(_ d: Double) -> String { d.isFinite ? String(format: "%.3g", d) : "–" }

func summary(_ m: [(String, JSONValue)]) -> String {
    let keys = ["eval/accuracy", "eval/reward_mean", "eval/kl_to_reference", "loss", "train/pairs"]
    return m.filter { keys.contains($0.0) }.map { "\($0.0.replacingOccurrences(of: "eval/", with: "")) \($0.1.double.map(fmt) ?? "–")" }
        .joined(separator: "  ")
}

/// Pairs from scored samples (best_vs_worst): per prompt, rank by score (ties: lower sample index
/// first) and pair the k-th best with the k-th worst for k < max_per_prompt, while the pair has
/// distinct samples, a margin ≥ min_margin, and (with skip_ties) different scores.
struct PairBuilder {
    let c: PairsSection
    init(_ c: PairsSection) { self.c = c }

    func build(samples: [Sample], scores: [Float]) -> [PairRecord] {
        var pairs: [PairRecord] = []
        var start = 0
        while start < samples.count {
            let p = samples[start].promptIndex
            var end = start
            while end < samples.count && samples[end].promptIndex == p { end += 1 }
            let ranked = (start..<end).filter { scores[$0].isFinite }.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            for k in 0..<min(c.maxPerPrompt, ranked.count / 2) {
                let hi = ranked[k], lo = ranked[ranked.count - 1 - k]
                let margin = scores[hi] - scores[lo]
                if c.skipTies && margin == 0 { break }
                if margin < c.minMargin { break }
                pairs.append(PairRecord(promptIndex: p, chosen: hi, rejected: lo, margin: margin, how: c.strategy.rawValue))
            }
            start = end
        }
        return pairs
    }
}

/// A stop request from a signal, checked at safe points.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    public init() {}
    public var isSet: Bool { lock.withLock { set } }
    public func request() { lock.withLock { set = true } }
}
