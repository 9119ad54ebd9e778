// Entry points behind `rondo start`, `resume`, `status` and `replay`.

import Collective
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

    /// `rondo start`: creates the campaign directory (rank 0) and runs it (on every rank).
    public static func start(config: URL, dir: URL, rounds: Int?, options: CampaignRunOptions = CampaignRunOptions(),
                             communicator c: Communicator = LocalCommunicator(),
                             log: @escaping (String) -> Void) throws -> CampaignOutcome {
        try Campaign.onRanks(c) {
            if c.rank == 0 {
                let store = try Campaign.create(config: config, dir: dir, rounds: rounds)
                log("campaign \(store.root.path)\(c.size > 1 ? " on \(c.size) ranks" : "")")
            }
            if c.size > 1 { try c.barrier() }
            return try resume(dir: dir, fromRound: nil, rounds: nil, options: options, communicator: c, log: log)
        }
    }

    /// `rondo resume`: continues after the last committed round (or from round N, archiving later ones).
    /// `rounds` sets the campaign's last round (state.json's `rounds_target`), e.g. to extend a finished one.
    public static func resume(dir: URL, fromRound: Int?, rounds: Int?, options: CampaignRunOptions = CampaignRunOptions(),
                              communicator c: Communicator = LocalCommunicator(),
                              log: @escaping (String) -> Void) throws -> CampaignOutcome {
        try Campaign.onRanks(c) { try resumeOnRanks(dir: dir, fromRound: fromRound, rounds: rounds, options: options, c, log: log) }
    }

    static func resumeOnRanks(dir: URL, fromRound: Int?, rounds: Int?, options: CampaignRunOptions, _ c: Communicator,
                              log: @escaping (String) -> Void) throws -> CampaignOutcome {
        let store = CampaignStore(root: dir)
        guard FileManager.default.fileExists(atPath: store.configURL.path) else {
            throw CampaignError("\(dir.path): no config.yaml; create the campaign with `rondo start CONFIG --dir \(dir.path)`")
        }
        let flag = StopFlag()
        let signals = installSignalHandlers(flag, log: log)
        defer { withExtendedLifetime(signals) {} }
        // The inputs are checked before anything changes.
        let campaign = try Campaign(store: store, options: options, stop: flag, log: log, communicator: c)
        if c.rank != 0 {
            try campaign.barrier()  // rank 0 archives and records the target first
            try campaign.configureThreads(like: store.committedRounds().last, options: options)
            return try campaign.run()
        }
        if let n = fromRound {
            guard try store.committedRounds().contains(n) else {
                throw CampaignError("\(dir.path): round \(n) is not committed; `rondo status \(dir.path)` lists the rounds")
            }
            try store.requireFullState(n)
            let lock = try CampaignLock(store)
            let moved = try store.archiveRounds(after: n)
            try store.rebuildIndex()
            if !moved.isEmpty {
                log("archived rounds \(moved.map(String.init).joined(separator: ", ")) into \(store.archive.path)")
                campaign.writeReport()  // report.html without them, even if no round commits after
            }
            withExtendedLifetime(lock) {}
        }
        if let rounds {
            let last = try store.committedRounds().last ?? 0
            guard rounds >= max(1, last) else {
                throw CampaignError("--rounds \(rounds): the campaign already has \(last) rounds; to go back, use --from-round N (later rounds are archived)")
            }
            let lock = try CampaignLock(store)
            try store.updateState { $0["rounds_target"] = .number(Double(rounds)) }
            withExtendedLifetime(lock) {}
            log("rounds target: \(rounds) (recorded in \(store.stateURL.path))")
        }
        try campaign.barrier()
        try campaign.configureThreads(like: store.committedRounds().last, options: options)
        return try campaign.run()
    }

    /// `rondo replay`: re-runs round N's update from round N−1's checkpoint and round N's buffer.
    /// Without overrides, returns (report, identical); with an override config, writes a
    /// counterfactual checkpoint and metrics into `out`.
    /// The round's buffer must be its own (header round and parent policy), and the parent round must
    /// have its full state (see `retention`). A round that ran on N ranks (`dist/ranks` in its
    /// metrics, or `ranks`) replays under `mpirun -np N`, or on one process computing the N ranks'
    /// shards in turn and summing them in rank order (the same bits). Ranks other than 0 return ("", true).
    public static func replay(dir: URL, round n: Int, override: URL?, out: URL?, options: CampaignRunOptions = CampaignRunOptions(),
                              ranks: Int? = nil, communicator c: Communicator = LocalCommunicator(),
                              log: @escaping (String) -> Void) throws -> (String, Bool) {
        try Campaign.onRanks(c) {
            try replayOnRanks(dir: dir, round: n, override: override, out: out, options: options, ranks: ranks, c, log: log)
        }
    }

    static func replayOnRanks(dir: URL, round n: Int, override: URL?, out: URL?, options: CampaignRunOptions, ranks: Int?,
                              _ c: Communicator, log: @escaping (String) -> Void) throws -> (String, Bool) {
        guard n >= 1 else { throw CampaignError("round 0 has no update to replay; pick a round ≥ 1") }
        let store = CampaignStore(root: dir)
        let campaign = try Campaign(store: store, options: options, log: log, communicator: c, readOnly: true)
        let N = try ranks ?? recordedRanks(store, round: n)
        try campaign.configureThreads(like: n, options: options)
        if c.size > 1 {
            guard N == c.size else {
                throw CampaignError("round \(n) is replayed on \(N) rank\(N == 1 ? "" : "s") (\(ranks == nil ? "its metrics.json's dist/ranks" : "--ranks")), but mpirun started \(c.size); use mpirun -np \(N), or replay on one process")
            }
        } else {
            campaign.reducer = N > 1 ? EmulatedReducer(ranks: N) : nil
        }
        var algorithm = campaign.config.algorithm
        if let override {
            let text = try String(contentsOf: override, encoding: .utf8)
            algorithm = try CampaignConfig.parseAlgorithmOverride(text, base: algorithm, source: override.path)
        }
        guard try store.committedRounds().contains(n) else { throw CampaignError("\(dir.path): round \(n) is not committed") }
        try store.requireReplayable(n)
        let (policy, optimizer, prev) = try campaign.loadRound(n - 1)
        let algo = RoundAlgorithms.type(of: campaign.config.algorithm.type).init(campaign: campaign, algorithm: algorithm)
        try algo.loadState(round: n - 1, state: prev)
        var samples: [SampleRecord] = [], pairs: [PairRecord] = [], comparisons: [ComparisonRecord] = []
        var header: BufferHeader?
        let buffer = store.roundURL(n).appendingPathComponent("rollouts.jsonl.zst")
        try BufferReader(url: buffer).read { item in
            switch item {
            case .sample(let s): samples.append(s)
            case .comparison(let c): comparisons.append(c)
            case .pair(let p): pairs.append(p)
            case .header(let h): header = h
            }
        }
        try header?.checkPlacement(of: buffer)
        let target = out ?? FileManager.default.temporaryDirectory.appendingPathComponent("rondo-replay-\(getpid())")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        defer { if out == nil { try? FileManager.default.removeItem(at: target) } }
        let rows = try algo.replayRows(&samples, pairs: pairs, previous: prev, campaign: campaign.config.algorithm)
        var report = rows.report
        var judgedSame = true
        if campaign.config.pairs.strategy == .judgePairwise {  // the judge's verdicts must make the buffer's pairs
            let (line, same) = try Campaign.checkJudgedPairs(comparisons, pairs)
            report += line
            judgedSame = same
        }
        log("replaying round \(n): \(campaign.config.algorithm.type.rawValue) on \(samples.count) samples and \(pairs.count) pairs from \(store.roundURL(n).path)")
        var metrics = try rows.metrics + algo.update(policy: policy, optimizer: optimizer, samples: samples, pairs: pairs, round: n,
                                                     shouldStop: { _, _ in false })
        guard c.rank == 0 else { return ("", true) }
        if N > 1 { report += "ranks: \(N)\(c.size == 1 ? " (emulated on one process: each rank's shard in turn, summed in rank order)" : "")\n" }
        var unused = prev
        var files = [campaign.checkpointWeights, AdamW.fileName] + (try algo.saveState(into: target, state: &unused))
        // Moments in the dtype the round recorded (a LoRA round written before BF16 moments holds
        // F32 ones), else the campaign's.
        try campaign.saveCheckpoint(policy, optimizer, into: target,
                                    moments: try AdamW.storedMoments(in: store.roundURL(n)))
        if let rf = campaign.refresh, rf.refreshes(round: n) {
            let (rmFiles, rmMetrics, rmReport) = try replayRewardModel(campaign, round: n, into: target)
            files += rmFiles; metrics += rmMetrics; report += rmReport
        }
        if override != nil || out != nil {
            try AtomicFile.write(Data(metricsLine([("round", .number(Double(n)))] + metrics.map { ($0.0, json($0.1)) }).utf8),
                                 to: target.appendingPathComponent("metrics.json"))
        }
        var same = rows.matchesBuffer && judgedSame
        for f in files {
            let url = store.roundURL(n).appendingPathComponent(f)
            guard FileManager.default.fileExists(atPath: url.path) || f == campaign.checkpointWeights else {
                report += "\(f)\n  not compared: pruned from round \(n) by `retention`\n"
                continue
            }
            let recorded = try sha256(of: url)
            let replayed = try sha256(of: target.appendingPathComponent(f))
            same = same && recorded == replayed
            report += "\(f)\n  recorded \(recorded)\n  replayed \(replayed)\n"
        }
        report += same ? "identical: the replay reproduces round \(n) bit for bit\n" : "DIFFERENT\(override != nil ? " (expected: the algorithm was overridden)" : "")\n"
        if let out { report += "checkpoint and metrics written to \(out.path)\n" }
        return (report, same)
    }
}

extension Campaign {
    /// The same bits need the same threads per process: a resume continues with the count of its last
    /// committed round, a replay uses the round's own (`threads` in its metrics.json), unless
    /// --threads gives one; the config's `threads` for a new campaign or a round that did not record
    /// it. Logs which count is used and why.
    func configureThreads(like round: Int?, options: CampaignRunOptions) throws {
        if let t = options.threads { return log("threads: \(t) (--threads)") }  // configured when the campaign opened
        if let r = round, let t = try recordedThreads(store, round: r) {
            Threads.configure(t)
            log("threads: \(t), as round \(r) ran (its metrics.json; --threads overrides)")
        } else {
            log("threads: \(config.threads) (the config's `threads`\(round.map { "; round \($0) did not record its count" } ?? ""))")
        }
    }
}

extension CampaignCommands {
    /// A refresh round's reward model, retrained from the parent round's reward model and optimizer
    /// state on the stored gold pairs (RewardRefresh.swift, step 3), saved into `target`.
    static func replayRewardModel(_ campaign: Campaign, round n: Int, into target: URL) throws
        -> (files: [String], metrics: [(String, Double)], report: String) {
        let url = campaign.store.roundURL(n).appendingPathComponent(RewardDataset.fileName)
        let rm = try campaign.loadRewardModel(round: n - 1)
        if FileManager.default.fileExists(atPath: url.path) { rm.newPairs = try RewardDataset.read(url) }
        let metrics = try campaign.trainRewardModel(rm, round: n, clock: nil)
        let files = try campaign.saveRewardModel(rm, into: target)
        return (files, metrics, "reward model retrained on \(rm.newPairs.count) stored gold pairs of round \(n)\n")
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
