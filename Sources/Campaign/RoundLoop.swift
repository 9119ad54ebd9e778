// One round as a fixed sequence of phases, the same for every algorithm:
//
//   sample → [rm_refresh] → label → reference → rows (pairs / advantages) → buffer → update → eval → commit
//
// rm_refresh runs only in a refresh round of a `labeller.refresh` campaign (RewardRefresh.swift):
// before labelling, so the round's labels come from the refreshed reward model.
// The reference log-probs come before the rows because PPO's advantages need them. `PhaseClock`
// writes each phase into status.json, records its time (`time/<phase>_s`) and checks for a stop
// request at every boundary; the update checks again between optimizer steps. A stop leaves the
// round uncommitted. Round 0 is the same loop with sampling, labelling and the update skipped: it
// evaluates the starting policy and commits it with the algorithm's initial state.

import Foundation
import Kernels
import Labeling
import Model
import Rollouts
import Sampling
import Training

/// Times a round's phases, writes the current one into status.json and checks for stop requests.
/// On several ranks every rank enters every phase (the stop check is a collective); only rank 0
/// (`writes`) writes status.json.
final class PhaseClock {
    let store: CampaignStore
    let round: Int
    let stopRequested: () throws -> Bool
    let writes: Bool
    private(set) var times: [(String, Double)] = []

    init(store: CampaignStore, round: Int, writes: Bool = true, stopRequested: @escaping () throws -> Bool) {
        self.store = store; self.round = round; self.writes = writes; self.stopRequested = stopRequested
    }

    /// The phase running now.
    private(set) var current = ""

    /// Enters a phase: throws `RoundInterrupted` on a stop request, else records it in status.json.
    func enter(_ name: String) throws -> Date {
        if try stopRequested() { throw RoundInterrupted() }
        current = name
        if writes { store.writeStatus(round: round, phase: name) }
        return Date()
    }

    /// Progress of the running phase over `total` items (see PhaseProgress): into status.json, and a
    /// log line through `log`.
    func progress(total: Int, unit: String, log: @escaping (String) -> Void) -> PhaseProgress {
        let (store, round, phase, writes) = (store, round, current, writes)
        return PhaseProgress(total: total, unit: unit) { snapshot, logged in
            guard writes else { return }
            store.writeStatus(round: round, phase: phase, progress: snapshot)
            if logged { log("round \(round): \(phase) \(snapshot.line)") }
        }
    }

    /// Runs one phase and records its time under `key`.
    func run<T>(_ name: String, _ key: String, _ body: () throws -> T) throws -> T {
        let t = try enter(name)
        defer { times.append((key, Date().timeIntervalSince(t))) }
        return try body()
    }

    /// A phase this round skips (round 0's sample, label and update), recorded as 0 s.
    func skip(_ key: String) { times.append((key, 0)) }
}

/// What the training phases of a round (1 and later) leave for evaluation and the commit.
struct TrainedRound {
    let policy: PolicyModel
    let optimizer: AdamW
    let reference: PolicyModel
    let previous: RoundState
    let prompts: Int
    let rows: RoundRows
    /// The labeller's own metrics (an HTTP judge's judge/*).
    let labelMetrics: [(String, Double)]
    let trainMetrics: [(String, Double)]
    let rollout: BufferSummary
    /// The round's temporary directory (nil on ranks other than 0, which write nothing).
    let directory: URL?
    /// A refresh campaign's reward model after this round (its labeller).
    let rewardModel: RewardModelState?
}

extension Campaign {
    /// Round r; nil when a stop request arrived before the commit (nothing of it is kept).
    func runRound(_ r: Int) throws -> CampaignOutcome? {
        let clock = PhaseClock(store: store, round: r, writes: isWriter, stopRequested: stopAgreed)
        let algorithm = RoundAlgorithms.type(of: config.algorithm.type).init(campaign: self, algorithm: config.algorithm)
        do {
            if r == 0 { log("round 0: evaluating the starting policy") }
            let trained = r == 0 ? nil : try train(r, algorithm, clock)
            if trained == nil { ["time/sample_s", "time/label_s", "time/update_s"].forEach(clock.skip) }
            let policy = trained?.policy ?? initialPolicy
            let evalMetrics = try clock.run("eval", "time/eval_s") { () -> [(String, Double)] in
                guard isWriter else { return [] }  // only rank 0 records metrics
                return try evaluator(r).evaluate(policy: policy, reference: trained?.reference ?? startingReference,
                                                 labeller: trained?.rewardModel.map { $0.labeller() as Labeller } ?? labeller,
                                                 useVerifier: config.labeller.evalVerifier || config.labeller.type == .verifier,
                                                 progress: clock.progress(total: 2 * eval.count, unit: "responses", log: log))
            }
            return try commit(r, algorithm, trained, evalMetrics, clock)
        } catch is RoundInterrupted {
            return nil
        }
    }

    /// Phases sample → label → reference → rows → buffer → update of round r ≥ 1.
    func train(_ r: Int, _ algorithm: any RoundAlgorithm, _ clock: PhaseClock) throws -> TrainedRound {
        let (policy, optimizer, prev) = try loadRound(r - 1)
        try algorithm.loadState(round: r - 1, state: prev)
        let rm = try refresh.map { _ in try loadRewardModel(round: r - 1) }
        let reference = reference(for: policy)
        let picked = PromptSet.select(count: config.prompts.perRound, cursor: prev.promptCursor, total: train.count, seed: config.seed)
        let sc = samplingConfig(round: r)
        log("round \(r): sampling \(picked.count) prompts × \(sc.n)")
        let share = promptShare(picked.count)  // this rank's prompts (all of them on one process)
        let samples = try clock.run("sample", "time/sample_s") {
            let progress = clock.progress(total: share.count * sc.n, unit: "samples", log: log)
            // A LoRA policy: the sampler merges W + s·B·A into its own copy, freed after sampling.
            let sampler = config.sampling.policy == .initial ? initialPolicy : policy
            return try gatherSamples(Sampler(model: sampler.model, adapter: sampler.adapter, config: sc,
                                             tokenBytes: tokenizer.map { t in { t.bytes($0) } })
                .generate(picked[share].map { train[$0].ids }, firstPromptIndex: share.lowerBound) {
                    if case .finished = $0 { progress.advance() }
                }
                .sorted { ($0.promptIndex, $0.sampleIndex) < ($1.promptIndex, $1.sampleIndex) })
        }
        let texts = samples.map { tokenizer?.decode($0.tokens, skipSpecialTokens: true) ?? "" }
        if let rm, refresh!.refreshes(round: r) {
            try clock.run("rm_refresh", "time/rm_refresh_s") {
                try refreshRewardModel(rm, round: r, samples: samples, texts: texts, picked: picked, clock: clock)
            }
        } else if let rm {
            let dataset = try RewardDataset.pairs(through: r - 1, store: store).filter { !$0.isHoldout }
            rm.metrics = [("rm/dataset_pairs", Double(dataset.count))]
        }
        let roundLabeller: Labeller = rm.map { $0.labeller() as Labeller } ?? labeller
        var judged: [JudgeCall] = [], judgeMetrics: [(String, Double)] = [], comparisons: [ComparisonRecord] = []
        let scores = try clock.run("label", "time/label_s") { () -> [Float] in
            guard let judge = roundLabeller as? HTTPJudge else {
                let mine = samples.indices.filter { share.contains(samples[$0].promptIndex) }
                let lo = mine.first ?? 0, hi = mine.last.map { $0 + 1 } ?? 0
                return try gatherScores(label(r, Array(samples[lo..<hi]), Array(texts[lo..<hi]), picked, with: roundLabeller,
                                              progress: clock.progress(total: share.count, unit: "prompts", log: log)))
            }
            if judge.config.mode == .pairwise {  // no scores: verdicts about pairs (PairwiseJudging.swift)
                (comparisons, judgeMetrics) = try judgePairs(judge, r, samples, texts, picked)
                return []
            }
            (judged, judgeMetrics) = try judgeLabels(judge, r, samples, texts, picked)
            return judged.map { $0.score ?? .nan }
        }
        let refLogprobs = try clock.run("reference", "time/reference_s") {
            try gatherBatches(batchSize: 16) { owns in
                try responseLogprobs(reference.model, adapter: reference.adapter, prompts: samples.map { train[picked[$0.promptIndex]].ids },
                                     responses: samples.map(\.tokens), batchSize: 16, owns: owns,
                                     progress: clock.progress(total: samples.count, unit: "rows", log: log))
            }
        }
        var records: [SampleRecord] = samples.enumerated().map { i, s in
            let prompt = train[picked[s.promptIndex]]
            return SampleRecord(id: i, promptIndex: s.promptIndex, promptID: prompt.id, sampleIndex: s.sampleIndex, prompt: prompt.text,
                                promptIDs: prompt.ids, responseIDs: s.tokens, response: texts[i], logprobs: s.logprobs,
                                refLogprobs: refLogprobs[i], label: label(i, scores, judged),
                                finishReason: s.finishReason.rawValue,
                                seed: SeedStream(seed: sc.seed, stream: UInt64(s.promptIndex) << 20 | UInt64(s.sampleIndex)))
        }
        let phase = type(of: algorithm).rowsPhase
        let rows = try clock.run(phase.name, phase.key) { () -> RoundRows in
            if config.pairs.strategy == .judgePairwise { return try PairwiseOutcome(comparisons).rows }
            return try algorithm.buildRows(&records, round: r, previous: prev)
        }
        let tmp = try isWriter ? store.beginRound(r) : nil
        var rollout = BufferSummary()
        try clock.run("buffer", "time/buffer_s") {
            for rec in records { rollout.add(rec) }
            for p in rows.pairs { rollout.add(p) }
            guard let tmp else { return }
            let w = try BufferWriter(url: tmp.appendingPathComponent("rollouts.jsonl.zst"),
                                     header: BufferHeader(round: r, policySHA256: prev.policySHA256, configSHA256: sha256(configText)))
            for rec in records { try w.append(rec) }
            for c in comparisons { try w.append(c) }
            for p in rows.pairs { try w.append(p) }
            try w.finish(timings: Dictionary(uniqueKeysWithValues: clock.times))
        }
        log("round \(r): \(rows.summary)")
        let before = communicator.statistics
        var trainMetrics = try clock.run("update", "time/update_s") {
            let progress = clock.progress(total: 0, unit: "steps", log: log)
            return try algorithm.update(policy: policy, optimizer: optimizer, samples: records, pairs: rows.pairs, round: r,
                                        shouldStop: { done, total in
                                            progress.set(done: done, total: total)
                                            return (try? self.stopAgreed()) ?? true
                                        })
        }
        trainMetrics += distributedMetrics(since: before, steps: trainMetrics.first { $0.0 == "train/steps" }?.1)
        return TrainedRound(policy: policy, optimizer: optimizer, reference: reference, previous: prev, prompts: picked.count,
                            rows: rows, labelMetrics: judgeMetrics, trainMetrics: trainMetrics, rollout: rollout, directory: tmp,
                            rewardModel: rm)
    }

    /// The round's sampling settings: the config's, seeded for round r.
    func samplingConfig(round r: Int) -> SamplingConfig {
        var sc = config.sampling.samplingConfig
        sc.seed = config.roundSeed(r)
        return sc
    }

    /// Scores every sample with `labeller`, one request per prompt.
    func label(_ r: Int, _ samples: [Sample], _ texts: [String], _ picked: [Int], with labeller: Labeller,
               progress: PhaseProgress? = nil) throws -> [Float] {
        var scores = [Float](repeating: 0, count: samples.count)
        for run in promptRuns(samples) {
            let (start, end, p) = (run.lowerBound, run.upperBound, samples[run.lowerBound].promptIndex)
            let prompt = train[picked[p]]
            let request = LabelRequest(prompt: prompt.text, promptIDs: prompt.ids, answer: prompt.answer,
                                       responses: Array(texts[start..<end]), responseIDs: samples[start..<end].map(\.tokens))
            let s: [Float]
            do { s = try labeller.checkedScore(request) } catch let e as LabelError where !e.interrupted {
                let which = e.response.map { "sample \(start + $0)" } ?? "samples \(start)…\(end - 1)"
                throw CampaignError("round \(r), \(which) (prompt \(prompt.id.map { "'\($0)'" } ?? "#\(picked[p])")): \(e.description); the round was not committed")
            }
            for k in start..<end { scores[k] = s[k - start] }
            progress?.advance()
        }
        return scores
    }

    /// The runs of consecutive samples of one prompt (a round's samples are sorted by prompt).
    func promptRuns(_ samples: [Sample]) -> [Range<Int>] {
        var runs: [Range<Int>] = [], start = 0
        while start < samples.count {
            var end = start
            while end < samples.count && samples[end].promptIndex == samples[start].promptIndex { end += 1 }
            runs.append(start..<end)
            start = end
        }
        return runs
    }

    /// The commit phase: checkpoint, the algorithm's state, round_state.json and metrics.json, then
    /// the atomic rename that makes the round visible.
    func commit(_ r: Int, _ algorithm: any RoundAlgorithm, _ trained: TrainedRound?, _ evalMetrics: [(String, Double)],
                _ clock: PhaseClock) throws -> CampaignOutcome {
        let rv = trained.map { Dictionary($0.rollout.values(), uniquingKeysWith: { a, _ in a }) } ?? [:]
        let alarms = trained == nil ? [] : self.alarms(rv, evalMetrics)
        for a in alarms { log("round \(r): ALARM \(a)") }
        let t = try clock.enter("commit")
        try barrier()  // every rank finished the round: rank 0 may commit it
        guard isWriter else { return try commitOutcome(nil, round: r) }
        let tmp = try trained?.directory ?? store.beginRound(0)
        let optimizer = trained?.optimizer ?? AdamW(layout: initialPolicy.trainableLayout, config: adamwConfig)
        let sha = try saveCheckpoint(trained?.policy ?? initialPolicy, optimizer, into: tmp)
        let rm = try trained?.rewardModel ?? refresh.map { _ in try initialRewardModel() }
        if let rm { try saveRewardModel(rm, into: tmp) }
        var state = RoundState(round: r, promptCursor: trained.map { $0.previous.promptCursor + $0.prompts } ?? 0,
                               optimizerStep: optimizer.step, reference: config.reference.rawValue, policySHA256: sha,
                               klCoef: trained?.previous.klCoef, base: basePin?.path, baseSHA256: basePin?.sha256)
        if trained == nil { try algorithm.saveInitialState(into: tmp, state: &state) } else { _ = try algorithm.saveState(into: tmp, state: &state) }
        var metrics: [(String, JSONValue)] = [("round", .number(Double(r))), ("threads", .number(Double(Threads.count)))]
        metrics += evalMetrics.map { ($0.0, json($0.1)) }
        if let trained {
            metrics += (trained.rows.metrics + trained.trainMetrics + trained.labelMetrics + (rm?.metrics ?? [])).map { ($0.0, json($0.1)) }
            // Samples judged pairwise have no scores: their score metrics are left out, not 0 or null.
            let scoreKeys: Set = config.pairs.strategy == .judgePairwise ? ["score_mean", "length_score_corr"] : []
            for k in ["score_mean", "length_mean", "length_score_corr", "pair_length_gap", "distinct_2", "duplicate_rate"]
                where !scoreKeys.contains(k) {
                metrics.append(("rollout/\(k)", json(rv[k]?.double ?? .nan)))
            }
            metrics.append(("alarms", .array(alarms.map { .string($0) })))
        }
        if !inputChanges.isEmpty { metrics.append(("inputs/changed", .array(inputChanges.map { .string($0) }))) }
        metrics += clock.times.map { ($0.0, .number($0.1)) }
        metrics.append(("time/commit_s", .number(Date().timeIntervalSince(t))))
        metrics.append(("peak_rss_mib", .number(peakRSSMiB())))
        try finishCommit(r, tmp, state, metrics)
        log("round \(r): \(summary(metrics))")
        let outcome: CampaignOutcome = !alarms.isEmpty && config.alarms.action == .stop
            ? .alarm(round: r, message: alarms.joined(separator: "; ")) : .finished(rounds: r)
        return try commitOutcome(outcome, round: r)
    }

    /// The known failure modes, from the round's buffer summary and its evaluation.
    func alarms(_ rv: [String: SummaryValue], _ evalMetrics: [(String, Double)]) -> [String] {
        let ev = Dictionary(evalMetrics, uniquingKeysWith: { a, _ in a })
        var alarms: [String] = []
        let corr = rv["length_score_corr"]?.double ?? .nan, gap = rv["pair_length_gap"]?.double ?? .nan
        if abs(corr) > config.alarms.lengthScoreCorrelation { alarms.append("length bias: corr(length, score) = \(fmt(corr))") }
        if gap > config.alarms.pairLengthGap { alarms.append("length bias: chosen − rejected length = \(fmt(gap)) tokens") }
        if let d2 = ev["eval/distinct_2"], d2 < config.alarms.distinct2Min { alarms.append("mode collapse: eval distinct-2 = \(fmt(d2))") }
        if let kl = ev["eval/kl_to_reference"], kl > config.alarms.klMax { alarms.append("KL drift: eval KL to reference = \(fmt(kl))") }
        return alarms
    }
}
