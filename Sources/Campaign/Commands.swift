// Entry points behind `rondo start`, `resume`, `status` and `replay`.

import Dispatch
import Foundation
import Kernels
import Labeling
import Model
import Rollouts
import Training
import Yams

public enum CampaignCommands {
    /// Installs SIGINT/SIGTERM handlers: the first asks `flag` to stop at the next safe point, a
    /// second exits at once (the campaign stays consistent: rounds commit atomically).
    public static func installSignalHandlers(_ flag: StopFlag, log: @escaping (String) -> Void) -> [DispatchSourceSignal] {
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                if flag.isSet {
                    log("second signal: exiting now; the last committed round is intact")
                    JudgeGroups.killAll()
                    _exit(130)
                }
                flag.request()
                log("stopping at the next safe point (send the signal again to exit at once)")
            }
            s.resume()
            sources.append(s)
        }
        return sources
    }

    /// `rondo start`: creates the campaign directory and runs it.
    public static func start(config: URL, dir: URL, rounds: Int?, log: @escaping (String) -> Void) throws -> CampaignOutcome {
        let store = try Campaign.create(config: config, dir: dir, rounds: rounds)
        log("campaign \(store.root.path)")
        return try resume(dir: dir, fromRound: nil, rounds: nil, log: log)
    }

    /// `rondo resume`: continues after the last committed round (or from round N, archiving later ones).
    public static func resume(dir: URL, fromRound: Int?, rounds: Int?, log: @escaping (String) -> Void) throws -> CampaignOutcome {
        let store = CampaignStore(root: dir)
        if let n = fromRound {
            guard try store.committedRounds().contains(n) else {
                throw CampaignError("\(dir.path): round \(n) is not committed; `rondo status \(dir.path)` lists the rounds")
            }
            let lock = try CampaignLock(store)
            let moved = try store.archiveRounds(after: n)
            try store.rebuildIndex()
            withExtendedLifetime(lock) {}
            if !moved.isEmpty { log("archived rounds \(moved.map(String.init).joined(separator: ", ")) into \(store.archive.path)") }
        }
        let flag = StopFlag()
        let signals = installSignalHandlers(flag, log: log)
        defer { withExtendedLifetime(signals) {} }
        let campaign = try Campaign(store: store, stop: flag, log: log)
        if let rounds, rounds != campaign.config.rounds {
            throw CampaignError("--rounds \(rounds) differs from the campaign's configured rounds (\(campaign.config.rounds.map(String.init) ?? "unlimited")); the config is fixed when the campaign starts")
        }
        return try campaign.run()
    }

    /// `rondo status`: the current round and phase, and a table of key metrics per round.
    public static func status(dir: URL, json: Bool) throws -> String {
        let store = CampaignStore(root: dir)
        guard FileManager.default.fileExists(atPath: store.configURL.path) else {
            throw CampaignError("\(dir.path): not a campaign directory (no config.yaml)")
        }
        let committed = try store.committedRounds()
        var rows: [[String: JSONValue]] = []
        for r in committed {
            let m = store.roundURL(r).appendingPathComponent("metrics.json")
            if let v = try? JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: m)) { rows.append(v) }
        }
        var phase: [String: JSONValue] = [:]
        if let s = try? JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: store.statusURL)) { phase = s }
        let pid = phase["pid"]?.int
        let running = pid.map { kill(pid_t($0), 0) == 0 } ?? false && FileManager.default.fileExists(atPath: store.root.appendingPathComponent("lock").path)
        let ppo = rows.contains { $0["objective/scores"] != nil }
        let keys = ["eval/accuracy", "eval/reward_mean", "eval/kl_to_reference", "eval/length_mean", "eval/distinct_2", "loss"]
            + (ppo ? ["objective/scores", "objective/kl_coef"] : ["train/pairs"])
        if json {
            let obj: [String: JSONValue] = [
                "dir": .string(store.root.path), "committed_rounds": .number(Double(committed.count)),
                "last_round": committed.last.map { .number(Double($0)) } ?? .null,
                "running": .bool(running), "round": phase["round"] ?? .null, "phase": phase["phase"] ?? .null,
                "rounds": .array(rows.map { .object($0) }),
            ]
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try e.encode(obj), as: UTF8.self) + "\n"
        }
        var out = "campaign  \(store.root.path)\n"
        out += "committed \(committed.count) rounds (last: \(committed.last.map(String.init) ?? "none"))\n"
        let ph = phase["phase"]?.string ?? "–", rd = phase["round"]?.int.map(String.init) ?? "–"
        out += running ? "running   round \(rd), phase \(ph) (pid \(pid!))\n" : "stopped   (last phase: \(ph) of round \(rd))\n"
        let names = ["round"] + keys.map { $0.replacingOccurrences(of: "eval/", with: "").replacingOccurrences(of: "objective/", with: "") }
        let widths = names.map { max(11, $0.count + 2) }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined() + "\n"
        }
        out += "\n" + line(names)
        for row in rows {
            out += line([row["round"]?.int.map(String.init) ?? "?"] + keys.map { k in row[k]?.double.map { fmt($0) } ?? "–" })
        }
        for row in rows {
            if let alarms = row["alarms"]?.array, !alarms.isEmpty {
                out += "round \(row["round"]?.int ?? -1) alarms: \(alarms.compactMap(\.string).joined(separator: "; "))\n"
            }
        }
        return out
    }

    /// `rondo replay`: re-runs round N's update from round N−1's checkpoint and round N's buffer.
    /// Without overrides, returns (report, identical); with an override config, writes a
    /// counterfactual checkpoint and metrics into `out`.
    public static func replay(dir: URL, round n: Int, override: URL?, out: URL?, log: (String) -> Void) throws -> (String, Bool) {
        guard n >= 1 else { throw CampaignError("round 0 has no update to replay; pick a round ≥ 1") }
        let store = CampaignStore(root: dir)
        let campaign = try Campaign(store: store)
        var algorithm = campaign.config.algorithm
        if let override {
            let text = try String(contentsOf: override, encoding: .utf8)
            algorithm = try CampaignConfig.parseAlgorithmOverride(text, base: algorithm, source: override.path)
        }
        guard try store.committedRounds().contains(n) else { throw CampaignError("\(dir.path): round \(n) is not committed") }
        let (policy, optimizer, prev) = try campaign.loadRound(n - 1)
        var samples: [SampleRecord] = [], pairs: [PairRecord] = []
        try BufferReader(url: store.roundURL(n).appendingPathComponent("rollouts.jsonl.zst")).read { item in
            switch item {
            case .sample(let s): samples.append(s)
            case .pair(let p): pairs.append(p)
            case .header: break
            }
        }
        let target = out ?? FileManager.default.temporaryDirectory.appendingPathComponent("rondo-replay-\(getpid())")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        defer { if out == nil { try? FileManager.default.removeItem(at: target) } }
        var files = ["policy/model.safetensors", AdamW.fileName]
        var metrics: [(String, Double)]
        var report = "", advantagesMatch = true
        if campaign.config.algorithm.type == .ppo {
            // Advantages are recomputed from the buffer (values, log-probs, scores) with the replay's
            // algorithm, so an override of gamma, lam or kl_coef takes effect; without one they must
            // equal the stored ones.
            let (value, valueOptimizer) = try campaign.loadValue(n - 1)
            let width = campaign.config.sampling.maxNewTokens
            let coef = algorithm.klCoef != campaign.config.algorithm.klCoef ? algorithm.klCoef : (prev.klCoef ?? algorithm.klCoef)
            var records = samples
            metrics = try PPOUpdate.attachAdvantages(&records, values: samples.map { $0.values ?? [] }, width: width, klCoef: coef,
                                                     config: algorithm.ppoConfig)
            advantagesMatch = zip(records, samples).allSatisfy { $0.advantages == $1.advantages && $0.returns == $1.returns }
            report += "advantages and returns recomputed from the buffer \(advantagesMatch ? "match" : "DIFFER from") the stored ones\n"
            log("replaying round \(n): PPO on \(records.count) samples from \(store.roundURL(n).path)")
            metrics += try PPOUpdate.run(policy: policy, policyOptimizer: optimizer, value: value, valueOptimizer: valueOptimizer,
                                         samples: records, width: width, algorithm: algorithm, seed: campaign.config.seed, round: n)
            try campaign.saveValue(value, valueOptimizer, into: target)
            files += ["\(Campaign.valueDirectory)/model.safetensors", Campaign.valueOptimizerFile]
        } else {
            let (examples, ref) = try RoundUpdate.examples(samples: samples, pairs: pairs)
            log("replaying round \(n): \(pairs.count) pairs from \(store.roundURL(n).path)")
            metrics = try RoundUpdate.run(model: policy, optimizer: optimizer, examples: examples, referenceSums: ref,
                                          algorithm: algorithm, seed: campaign.config.seed, round: n)
        }
        try campaign.saveCheckpoint(policy, optimizer, into: target)
        if override != nil || out != nil {
            try AtomicFile.write(Data(metricsLine([("round", .number(Double(n)))] + metrics.map { ($0.0, json($0.1)) }).utf8),
                                 to: target.appendingPathComponent("metrics.json"))
        }
        var same = advantagesMatch
        for f in files {
            let recorded = try sha256(of: store.roundURL(n).appendingPathComponent(f))
            let replayed = try sha256(of: target.appendingPathComponent(f))
            same = same && recorded == replayed
            report += "\(f)\n  recorded \(recorded)\n  replayed \(replayed)\n"
        }
        report += same ? "identical: the replay reproduces round \(n) bit for bit\n" : "DIFFERENT\(override != nil ? " (expected: the algorithm was overridden)" : "")\n"
        if let out { report += "checkpoint and metrics written to \(out.path)\n" }
        return (report, same)
    }
}

extension CampaignConfig {
    /// Applies an override file holding an `algorithm:` section to `base`: keys given replace the
    /// campaign's, the rest stay. Other top-level keys are refused (replay changes only the update).
    static func parseAlgorithmOverride(_ text: String, base: AlgorithmSection, source: String) throws -> AlgorithmSection {
        let top: Any?
        do { top = try Yams.load(yaml: text) } catch { throw CampaignError("\(source): not valid YAML (\(error))") }
        guard let dict = top as? [String: Any], let over = dict["algorithm"] as? [String: Any] else {
            throw CampaignError("\(source): expected an 'algorithm:' mapping, e.g.\nalgorithm:\n  beta: 0.3")
        }
        if let other = dict.keys.first(where: { $0 != "algorithm" }) {
            throw CampaignError("\(source): '\(other)' cannot be overridden in a replay; only 'algorithm' keys can")
        }
        guard var merged = try Yams.load(yaml: YAMLEncoder().encode(base)) as? [String: Any] else {
            throw CampaignError("internal: cannot re-encode the algorithm section")
        }
        for (k, v) in over { merged[k] = v }
        let yaml = "policy: x\nprompts: {train: x, eval: x}\nalgorithm:\n" + (try Yams.dump(object: merged))
            .split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
        return try CampaignConfig.parse(yaml, source: source).algorithm
    }
}
