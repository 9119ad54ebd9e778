// The campaign daemon: round after round of phases (RoundLoop.swift), each round committed
// atomically (CampaignStore) and replayable (the algorithm's update, RoundAlgorithm.swift).
// Round 0 evaluates the starting policy, so every later round compares with it.

import Collective
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
    /// SHA-256 of this round's policy/model.safetensors (a LoRA policy: policy/adapter_model.safetensors).
    public var policySHA256: String
    /// PPO: the KL coefficient the next round uses (the adaptive controller's state).
    public var klCoef: Double? = nil
    /// A LoRA policy's frozen base: its weights file and SHA-256 (as pinned in state.json).
    public var base: String? = nil
    public var baseSHA256: String? = nil
    enum CodingKeys: String, CodingKey {
        case round, promptCursor = "prompt_cursor", optimizerStep = "optimizer_step", reference
        case policySHA256 = "policy_sha256", klCoef = "kl_coef", base, baseSHA256 = "base_sha256"
    }
}

/// What `resume`, `replay` (and `start`) may override without changing the campaign's config.
public struct CampaignRunOptions: Sendable {
    /// Threads for matrix products and kernels (nil = the count the resumed or replayed round ran
    /// with, else the config's `threads`; see `Campaign.configureThreads`).
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
    /// A refresh campaign's gold labeller (`labeller.refresh.gold`).
    let goldLabeller: Labeller?
    /// The starting policy, or a LoRA policy's frozen base (held once, shared by every round).
    let initial: LlamaModel
    /// A LoRA policy's starting adapter (LoRAPolicy.swift); nil for a full model.
    let initialAdapter: LoRAAdapter?
    /// Where the starting policy is read from: rounds/000000/policy once round 0 is committed (a
    /// LoRA policy's base is never copied: always the configured base).
    let modelSource: URL
    /// Pinned inputs as they are now, and the changes `--allow-changed-inputs` accepted (recorded by
    /// the next committed round, then pinned).
    let inputs: [PinnedInput]
    var inputChanges: [String]
    let log: (String) -> Void
    /// Set by SIGINT/SIGTERM: finish nothing new, leave at the next safe point.
    public let stop: StopFlag
    /// The ranks of this run (one local rank without mpirun); see Ranks.swift.
    public let communicator: Communicator
    /// How the update sums the ranks' gradients: nil on one process, the ranks' sum under mpirun, or
    /// an emulation of N ranks (`rondo replay` of an N-rank round on one process).
    var reducer: GradientReducer?

    /// Opens a campaign directory whose config.yaml exists (written by `start`). `readOnly` (replay)
    /// writes nothing into it, not even the pins of a campaign from before pinning.
    public init(store: CampaignStore, options: CampaignRunOptions = CampaignRunOptions(), stop: StopFlag = StopFlag(),
                log: @escaping (String) -> Void = { _ in }, communicator: Communicator = LocalCommunicator(),
                readOnly: Bool = false) throws {
        self.store = store
        self.stop = stop
        self.communicator = communicator
        reducer = communicator.size > 1 ? RankReducer(communicator) : nil
        self.log = log
        guard let text = try? String(contentsOf: store.configURL, encoding: .utf8) else {
            throw CampaignError("\(store.root.path): no config.yaml; create the campaign with `rondo start CONFIG --dir \(store.root.path)`")
        }
        configText = text
        config = try CampaignConfig.parse(text, source: store.configURL.path)
        Threads.configure(options.threads ?? config.threads)
        if let pins = try Self.recordedInputs(store) {
            let checked = try Self.checkInputs(pins, configText: text, store: store, allowChanged: options.allowChangedInputs,
                                               baseCopied: !config.isLoRA)
            inputs = checked.current
            inputChanges = checked.changes
            for c in checked.changes { log("changed input accepted (--allow-changed-inputs): \(c)") }
        } else {
            // A campaign from before pinning: pin what is there now (read-only: the next resume pins them).
            let pins = try Self.inputs(of: config, yaml: text, configDirectory: store.root, store: store)
            if communicator.rank == 0 && !readOnly {
                try Self.record(pins, in: store)
                log("pinned the campaign's inputs in \(store.stateURL.path)")
            }
            inputs = pins
            inputChanges = []
        }
        let roundZero = try store.committedRounds().first == 0
        let policyDir = roundZero && !config.isLoRA ? store.roundURL(0).appendingPathComponent("policy") : URL(fileURLWithPath: config.policy)
        modelSource = policyDir
        let loaded = try ModelDirectory.load(policyDir)
        guard loaded.config.head == .causalLM else { throw CampaignError("\(policyDir.path): the policy must be a causal LM") }
        initial = LlamaModel(config: loaded.config, parameters: loaded.parameters)
        initialAdapter = roundZero ? nil : try Self.startingAdapter(config, base: loaded.config)
        let tok = policyDir.appendingPathComponent("tokenizer.json")
        tokenizer = FileManager.default.fileExists(atPath: tok.path) ? try Tokenizer(url: tok) : nil
        var template: ModelTemplate??  // loaded at the first conversational prompt
        let chatTemplate: () throws -> ModelTemplate? = {
            if template == nil { template = .some(try ModelTemplate.load(directory: policyDir)) }
            return template ?? nil
        }
        let maxNew = config.sampling.maxNewTokens
        train = try PromptSet.load(URL(fileURLWithPath: config.prompts.train), key: "prompts.train", tokenizer: tokenizer,
                                   config: loaded.config, maxNewTokens: maxNew, needsAnswer: config.labeller.type == .verifier || config.labeller.refresh?.gold.type == .verifier,
                                   template: chatTemplate)
        var ev = try PromptSet.load(URL(fileURLWithPath: config.prompts.eval), key: "prompts.eval", tokenizer: tokenizer,
                                    config: loaded.config, maxNewTokens: maxNew, needsAnswer: false, template: chatTemplate)
        if let limit = config.prompts.evalLimit { ev = Array(ev.prefix(limit)) }
        eval = ev
        labeller = try Self.makeLabeller(config.labeller, stop: stop)
        goldLabeller = try config.labeller.refresh.map { try Self.makeLabeller($0.gold, stop: stop) }
        if communicator.size > 1 && config.labeller.type == .http {
            throw CampaignError("labeller type http runs on one process only for now; run this campaign without mpirun (or use a command judge, which runs on every rank)")
        }
        if communicator.size > 1 && config.labeller.refresh != nil {
            throw CampaignError("labeller.refresh runs on one process only for now; run this campaign without mpirun")
        }
    }

    static func makeLabeller(_ l: LabellerSection, stop: StopFlag = StopFlag()) throws -> Labeller {
        switch l.type {
        case .verifier: return Verifier()
        case .command:
            let cmd = l.command!
            return try CommandJudge(name: l.name ?? URL(fileURLWithPath: cmd[0]).lastPathComponent, command: cmd,
                                    timeout: l.timeoutS, maxRestarts: l.maxRestarts,
                                    workingDirectory: l.workingDirectory.map { URL(fileURLWithPath: $0, isDirectory: true) },
                                    interrupted: { stop.isSet })
        case .http:
            return try HTTPJudge(config: l.http!, name: l.name, interrupted: { stop.isSet })
        case .rewardModel:
            let dir = URL(fileURLWithPath: l.model!)
            if let a = l.adapter {  // a reward-model LoRA adapter on the base `model`; its id names the adapter
                let adapter = URL(fileURLWithPath: a)
                let sha = try sha256(of: adapter.appendingPathComponent(LoRAAdapter.weightsFile))
                return try RewardModelLabeller(directory: dir, adapter: adapter, weightsSHA256: sha)
            }
            let sha = try sha256(of: dir.appendingPathComponent("model.safetensors"))
            return try RewardModelLabeller(directory: dir, weightsSHA256: sha)
        }
    }

    // MARK: Running

    /// Runs rounds until the configured count (or a stop request). Holds the lock throughout.
    public func run() throws -> CampaignOutcome {
        let lock = try isWriter ? CampaignLock(store) : nil
        defer { withExtendedLifetime(lock) {} }
        if isWriter {
            try store.removeIncompleteRounds()
            try store.rebuildIndex()
            try prune()
        }
        try barrier()
        var committed = try store.committedRounds()
        do {
            if committed.isEmpty {
                guard try runRound(0) != nil else { return .stopped(afterRound: -1) }
                committed = [0]
            }
            try store.requireFullState(committed.last!)
            let target = try store.roundsTarget() ?? config.rounds
            while target.map({ committed.last! < $0 }) ?? true {
                if try stopAgreed() { return .stopped(afterRound: committed.last!) }
                let r = committed.last! + 1
                guard let outcome = try runRound(r) else { return .stopped(afterRound: r - 1) }
                committed.append(r)
                if isWriter { try prune() }
                if case .alarm = outcome { return outcome }
            }
        } catch let e as LabelError where e.interrupted {
            // A stop request ended a judge's wait: the round is abandoned, nothing of it committed.
            return .stopped(afterRound: committed.last ?? -1)
        }
        if isWriter { store.writeStatus(round: committed.last!, phase: "finished") }
        return .finished(rounds: committed.last!)
    }

    var adamwConfig: AdamWConfig { config.algorithm.optimizer.adamw }

    func evaluator(_ round: Int) -> Evaluator {
        Evaluator(prompts: eval, sampling: config.sampling, tokenizer: tokenizer, seed: config.roundSeed(round))
    }

    /// Loads round r's checkpoint (weights or adapter, and optimizer state).
    func loadRound(_ r: Int) throws -> (PolicyModel, AdamW, RoundState) {
        let dir = store.roundURL(r), p = dir.appendingPathComponent("policy")
        let model: PolicyModel
        if config.isLoRA {
            model = PolicyModel(model: initial, adapter: try LoRAAdapter.load(from: p, model: initial.config))
        } else {
            let m = try ModelDirectory.load(p)
            model = PolicyModel(model: LlamaModel(config: m.config, parameters: m.parameters), adapter: nil)
        }
        let opt = try AdamW.load(from: dir, layout: model.trainableLayout, config: adamwConfig)
        let state = try JSONDecoder().decode(RoundState.self, from: Data(contentsOf: dir.appendingPathComponent("round_state.json")))
        return (model, opt, state)
    }

    /// How the policy's AdamW moments are kept between rounds: `algorithm.optimizer_moments`, by
    /// default bf16 for a LoRA policy (its round checkpoint is then adapter + half-size moments) and
    /// f32 for a full model (its checkpoints keep their exact float32 state).
    var momentsDType: MomentsDType { config.algorithm.optimizerMoments ?? (config.isLoRA ? .bf16 : .f32) }

    /// Writes policy/ (the model, or a LoRA policy's adapter in PEFT's files) and
    /// optimizer.safetensors into `dir`; returns the SHA-256 of the weights (`checkpointWeights`).
    /// The moments are written as `moments` (default `momentsDType`); BF16 rounds the optimizer's
    /// moments in memory first, so every run — uninterrupted, resumed or replayed — continues from
    /// the values on disk (the next round loads them anyway).
    @discardableResult
    func saveCheckpoint(_ policy: PolicyModel, _ optimizer: AdamW, into dir: URL, moments: MomentsDType? = nil) throws -> String {
        let p = dir.appendingPathComponent("policy")
        if let adapter = policy.adapter {
            try adapter.save(to: p, baseModel: config.policy)
        } else {
            let model = policy.model
            try ModelDirectory.save(config: model.config, parameters: model.parameters, to: p, copyingAuxiliaryFilesFrom: modelSource)
        }
        try optimizer.save(to: dir, moments: moments ?? momentsDType)
        return try sha256(of: dir.appendingPathComponent(checkpointWeights))
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

/// A stop request from a signal, checked at safe points.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    public init() {}
    public var isSet: Bool { lock.withLock { set } }
    public func request() { lock.withLock { set = true } }
}
