// Creating a campaign, and its pinned inputs: `rondo start` records the SHA-256 of every file the campaign reads besides its own
// rounds (the starting policy, the reference, the tokenizer, the prompt files, the judge, a
// refresh's gold labeller and the resolved config) under "inputs" in state.json. `resume` and `replay` check them and refuse a
// changed one, naming the file and both hashes; `--allow-changed-inputs` accepts the change, which
// the next committed round records in its metrics (`inputs/changed`) before the new hashes are pinned.
//
// Once round 0 is committed the campaign reads the starting policy, the reference (`initial`) and
// the tokenizer from its own copy in rounds/000000/policy, so those are checked there: the weights
// against round 0's recorded policy_sha256, the tokenizer against its pin. A LoRA policy's base
// is never copied (rounds hold the adapter only): it is read, and checked, where the config names it;
// its starting adapter (`policy.adapter`) is read from round 0's copy once round 0 is committed.

import Foundation
import Model

/// One pinned input: what it is (a config key), the file, and its SHA-256 when pinned.
public struct PinnedInput: Codable, Sendable, Equatable {
    public var name: String
    public var path: String
    public var sha256: String
}

extension LabellerSection {
    /// Makes the labeller's paths absolute with `abs` (relative to the config file): the reward model,
    /// the judge's template, a command judge's program (when it names a path) and its working directory,
    /// which defaults to the config file's directory (docs/judges.md), wherever Rondo is started from.
    mutating func resolvePaths(_ abs: (String) -> String) {
        if let m = model { model = abs(m) }
        if let a = adapter { adapter = abs(a) }
        if let t = http?.promptTemplate { http?.promptTemplate = abs(t) }
        if var cmd = command, let first = cmd.first, first.contains("/") { cmd[0] = abs(first); command = cmd }
        if type == .command { workingDirectory = abs(workingDirectory ?? ".") }
    }
}

/// Names of inputs that are read from rounds/000000/policy once round 0 is committed.
let startingModelInputs: Set<String> = ["policy", "reference", "tokenizer", "algorithm.value_model"]

extension Campaign {
    /// Creates DIR with the resolved config (paths made absolute) and its pinned inputs. Every input is
    /// read before anything is written. Refuses a directory that holds a campaign with a different
    /// config and committed rounds; one without committed rounds (a failed start) is started afresh.
    public static func create(config url: URL, dir: URL, rounds: Int?) throws -> CampaignStore {
        var config = try CampaignConfig.load(url)
        let base = url.deletingLastPathComponent()
        func abs(_ p: String) -> String { URL(fileURLWithPath: p, relativeTo: base).standardizedFileURL.path }
        config.policy = abs(config.policy)
        if let a = config.adapter { config.adapter = abs(a) }
        config.prompts.train = abs(config.prompts.train)
        config.prompts.eval = abs(config.prompts.eval)
        if let v = config.algorithm.ppo.valueModel, v != "policy" { config.algorithm.ppo.valueModel = abs(v) }
        config.labeller.resolvePaths(abs)
        config.labeller.refresh?.gold.resolvePaths(abs)  // the gold labeller's paths, as the labeller's
        if let rounds { config.rounds = rounds }
        let store = CampaignStore(root: dir)
        let yaml = try config.yaml()
        let pins = try inputs(of: config, yaml: yaml, configDirectory: base, store: store)
        let started = !(try store.committedRounds().isEmpty)
        let existing = try? String(contentsOf: store.configURL, encoding: .utf8)
        if started {
            guard existing == yaml else {
                throw CampaignError("\(dir.path): already holds a campaign with a different config; use `rondo resume \(dir.path)` or another --dir")
            }
            return store
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let lock = try CampaignLock(store)
        defer { withExtendedLifetime(lock) {} }
        // The pins first, config.yaml last: a directory without config.yaml is one `start` may redo.
        try record(pins, in: store)
        if existing != yaml { try AtomicFile.write(Data(yaml.utf8), to: store.configURL) }
        return store
    }

    /// The inputs of a resolved `config` (absolute paths); judge arguments resolve against `configDirectory`.
    static func inputs(of config: CampaignConfig, yaml: String, configDirectory: URL, store: CampaignStore) throws -> [PinnedInput] {
        var pins: [PinnedInput] = []
        var hashes: [String: String] = [:]
        func pin(_ name: String, _ url: URL) throws {
            let path = url.standardizedFileURL.path
            if hashes[path] == nil {
                do { hashes[path] = try sha256(of: url) } catch {
                    throw CampaignError("\(path): cannot read \(name) (\(error.localizedDescription))")
                }
            }
            pins.append(PinnedInput(name: name, path: path, sha256: hashes[path]!))
        }
        /// A model directory's weights: model.safetensors, or the index and its shards.
        func pinModel(_ name: String, _ dir: URL) throws {
            let single = dir.appendingPathComponent(ModelDirectory.weightsFile)
            if FileManager.default.fileExists(atPath: single.path) { return try pin(name, single) }
            let shards = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
                .filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".safetensors.index.json") }.sorted()
            guard !shards.isEmpty else { throw CampaignError("\(dir.path): \(name) has no safetensors weights") }
            for f in shards { try pin(name, dir.appendingPathComponent(f)) }
        }
        let policy = URL(fileURLWithPath: config.policy)
        try pinModel("policy", policy)
        if config.reference == .initial { try pinModel("reference", policy) }
        /// A PEFT adapter directory's weights and config.
        func pinAdapter(_ name: String, _ dir: String) throws {
            for f in [LoRAAdapter.weightsFile, LoRAAdapter.configFile] {
                try pin(name, URL(fileURLWithPath: dir).appendingPathComponent(f))
            }
        }
        if let a = config.adapter { try pinAdapter("policy.adapter", a) }
        let tok = policy.appendingPathComponent("tokenizer.json")
        if FileManager.default.fileExists(atPath: tok.path) { try pin("tokenizer", tok) }
        try pin("prompts.train", URL(fileURLWithPath: config.prompts.train))
        try pin("prompts.eval", URL(fileURLWithPath: config.prompts.eval))
        /// A labeller's files (the judge, its template, the reward model and its adapter), named under `key`.
        func pinLabeller(_ l: LabellerSection, key: String) throws {
            // Judge arguments that name files resolve where the judge runs (its working directory).
            let judgeDirectory = l.workingDirectory.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? configDirectory
            for (i, arg) in (l.command ?? []).enumerated() {
                let url = URL(fileURLWithPath: arg, relativeTo: judgeDirectory).standardizedFileURL
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue {
                    try pin("\(key).command[\(i)]", url)
                }
            }
            if let m = l.model { try pinModel("\(key).model", URL(fileURLWithPath: m)) }
            if let a = l.adapter { try pinAdapter("\(key).adapter", a) }
            if let t = l.http?.promptTemplate { try pin("\(key).prompt_template", URL(fileURLWithPath: t)) }
        }
        try pinLabeller(config.labeller, key: "labeller")
        if let gold = config.labeller.refresh?.gold { try pinLabeller(gold, key: "labeller.refresh.gold") }
        if let v = config.algorithm.ppo.valueModel, v != "policy" { try pinModel("algorithm.value_model", URL(fileURLWithPath: v)) }
        pins.append(PinnedInput(name: "config", path: store.configURL.path, sha256: sha256(yaml)))
        return pins
    }

    /// Writes `pins` into state.json.
    static func record(_ pins: [PinnedInput], in store: CampaignStore) throws {
        let value = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(pins))
        try store.updateState { $0["inputs"] = value }
    }

    /// The pins recorded in state.json (nil for a campaign started before pinning existed).
    static func recordedInputs(_ store: CampaignStore) throws -> [PinnedInput]? {
        guard let v = try store.readState()["inputs"] else { return nil }
        do { return try JSONDecoder().decode([PinnedInput].self, from: JSONEncoder().encode(v)) } catch {
            throw CampaignError("\(store.stateURL.path): 'inputs' is not a list of {name, path, sha256} (\(error))")
        }
    }

    /// Checks every pinned input; returns the current pins and a line per changed one. Throws on a
    /// change unless `allowChanged`. `baseCopied` is false for a LoRA policy, whose base round 0
    /// does not copy (it is checked where it is).
    static func checkInputs(_ pins: [PinnedInput], configText: String, store: CampaignStore,
                            allowChanged: Bool, baseCopied: Bool = true) throws -> (current: [PinnedInput], changes: [String]) {
        let roundZero = try store.committedRounds().first == 0
        let copy = store.roundURL(0).appendingPathComponent("policy")
        var current: [PinnedInput] = [], changes: [String] = []
        var hashes: [String: String] = [:]
        /// The file's SHA-256 now, each file hashed once ("(missing)" when it cannot be read).
        func hash(_ path: String) -> String {
            if let h = hashes[path] { return h }
            let h = (try? sha256(of: URL(fileURLWithPath: path))) ?? "(missing)"
            hashes[path] = h
            return h
        }
        for p in pins {
            var now = p, expected = p.sha256
            if p.name == "config" {
                now.sha256 = sha256(configText)
            } else if roundZero && (p.name == "policy.adapter" || baseCopied && startingModelInputs.contains(p.name)) {
                // Read from round 0's own copy from now on (the value model: from its round state).
                guard p.name != "algorithm.value_model" && p.name != "policy.adapter" else { current.append(p); continue }
                let file = p.name == "tokenizer" ? "tokenizer.json" : ModelDirectory.weightsFile
                if current.contains(where: { $0.name == p.name }) { current.append(p); continue }  // a sharded start: one copy
                now.path = copy.appendingPathComponent(file).path
                if file == ModelDirectory.weightsFile {
                    let state = try JSONDecoder().decode(RoundState.self, from: Data(contentsOf: store.roundURL(0).appendingPathComponent("round_state.json")))
                    expected = state.policySHA256
                }
                now.sha256 = hash(now.path)
                current.append(p)
                if now.sha256 != expected { changes.append("\(p.name) (the campaign's copy) \(now.path): pinned \(expected), now \(now.sha256)") }
                continue
            } else {
                now.sha256 = hash(p.path)
            }
            current.append(now)
            if now.sha256 != expected { changes.append("\(p.name) \(p.path): pinned \(expected), now \(now.sha256)") }
        }
        if !changes.isEmpty && !allowChanged {
            throw CampaignError("""
                \(store.root.path): \(changes.count == 1 ? "an input has" : "\(changes.count) inputs have") changed since `rondo start` pinned them:
                \(changes.map { "  " + $0 }.joined(separator: "\n"))
                restore \(changes.count == 1 ? "it" : "them"), or pass --allow-changed-inputs to continue with the new contents (recorded in the next round's metrics as inputs/changed)
                """)
        }
        return (current, changes)
    }
}
