// One round as a fixed sequence of phases, the same for every algorithm:
//
//   sample → label → reference → rows (pairs / advantages) → buffer → update → eval → commit
//
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
final class PhaseClock {
    let store: CampaignStore
    let round: Int
    let stop: StopFlag
    private(set) var times: [(String, Double)] = []

    init(store: CampaignStore, round: Int, stop: StopFlag) { self.store = store; self.round = round; self.stop = stop }

    /// The phase running now.
    private(set) var current = ""

    /// Enters a phase: throws `RoundInterrupted` on a stop request, else records it in status.json.
    func enter(_ name: String) throws -> Date {
        if stop.isSet { throw RoundInterrupted() }
        current = name
        store.writeStatus(round: round, phase: name)
        return Date()
    }

    /// Progress of the running phase over `total` items (see PhaseProgress): into status.json, and a
    /// log line through `log`.
    func progress(total: Int, unit: String, log: @escaping (String) -> Void) -> PhaseProgress {
        let (store, round, phase) = (store, round, current)
        return PhaseProgress(total: total, unit: unit) { snapshot, logged in
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
    let directory: URL
}

extension Campaign {
    /// Round r; nil when a stop request arrived before the commit (nothing of it is kept).
    func runRound(_ r: Int) throws -> CampaignOutcome? {
        let clock = PhaseClock(store: store, round: r, stop: stop)
        let algorithm = RoundAlgorithms.type(of: config.algorithm.type).init(campaign: self, algorithm: config.algorithm)
        do {
            if r == 0 { log("round 0: evaluating the starting policy") }
            let trained = r == 0 ? nil : try train(r, algorithm, clock)
            if trained == nil { ["time/sample_s", "time/label_s", "time/update_s"].forEach(clock.skip) }
            let policy = trained?.policy ?? initialPolicy
            let evalMetrics = try clock.run("eval", "time/eval_s") {
                try evaluator(r).evaluate(policy: policy, reference: trained?.reference ?? startingReference, labeller: labeller,
                                          useVerifier: config.labeller.evalVerifier || config.labeller.type == .verifier)
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
        let reference = reference(for: policy)
        let picked = PromptSet.select(count: config.prompts.perRound, cursor: prev.promptCursor, total: train.count, seed: config.seed)
        let sc = samplingConfig(round: r)
        log("round \(r): sampling \(picked.count) prompts × \(sc.n)")
        let samples = try clock.run("sample", "time/sample_s") {
            let progress = clock.progress(total: picked.count * sc.n, unit: "samples", log: log)
            // A LoRA policy: the sampler merges W + s·B·A into its own copy, freed after sampling.
            return try Sampler(model: policy.model, adapter: policy.adapter, config: sc, tokenBytes: tokenizer.map { t in { t.bytes($0) } })
                .generate(picked.map { train[$0].ids }) { if case .finished = $0 { progress.advance() } }
                .sorted { ($0.promptIndex, $0.sampleIndex) < ($1.promptIndex, $1.sampleIndex) }
        }
        let texts = samples.map { tokenizer?.decode($0.tokens, skipSpecialTokens: true) ?? "" }
        var judged: [JudgeCall] = [], judgeMetrics: [(String, Double)] = []
        let scores = try clock.run("label", "time/label_s") { () -> [Float] in
            guard let judge = labeller as? HTTPJudge else {
                return try label(r, samples, texts, picked, progress: clock.progress(total: picked.count, unit: "prompts", log: log))
            }
            (judged, judgeMetrics) = try judgeLabels(judge, r, samples, texts, picked)
            return judged.map { $0.score ?? .nan }
        }
        let refLogprobs = try clock.run("reference", "time/reference_s") {
            try responseLogprobs(reference.model, adapter: reference.adapter, prompts: samples.map { train[picked[$0.promptIndex]].ids }, responses: samples.map(\.tokens),
                                 progress: clock.progress(total: samples.count, unit: "rows", log: log))
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
        let rows = try clock.run(phase.name, phase.key) { try algorithm.buildRows(&records, round: r, previous: prev) }
        let tmp = try store.beginRound(r)
        var rollout = BufferSummary()
        try clock.run("buffer", "time/buffer_s") {
            let w = try BufferWriter(url: tmp.appendingPathComponent("rollouts.jsonl.zst"),
                                     header: BufferHeader(round: r, policySHA256: prev.policySHA256, configSHA256: sha256(configText)))
            for rec in records { try w.append(rec); rollout.add(rec) }
            for p in rows.pairs { try w.append(p); rollout.add(p) }
            try w.finish(timings: Dictionary(uniqueKeysWithValues: clock.times))
        }
        log("round \(r): \(rows.summary)")
        let trainMetrics = try clock.run("update", "time/update_s") {
            try algorithm.update(policy: policy, optimizer: optimizer, samples: records, pairs: rows.pairs, round: r,
                                 shouldStop: { stop.isSet })
        }
        return TrainedRound(policy: policy, optimizer: optimizer, reference: reference, previous: prev, prompts: picked.count,
                            rows: rows, labelMetrics: judgeMetrics, trainMetrics: trainMetrics, rollout: rollout, directory: tmp)
    }

    /// The round's sampling settings: the config's, seeded for round r.
    func samplingConfig(round r: Int) -> SamplingConfig {
        var sc = config.sampling.samplingConfig
        sc.seed = config.roundSeed(r)
        return sc
    }

    /// Scores every sample, one labeller request per prompt.
    func label(_ r: Int, _ samples: [Sample], _ texts: [String], _ picked: [Int], progress: PhaseProgress? = nil) throws -> [Float] {
        var scores = [Float](repeating: 0, count: samples.count)
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
            progress?.advance()
            start = end
        }
        return scores
    }

    /// The commit phase: checkpoint, the algorithm's state, round_state.json and metrics.json, then
    /// the atomic rename that makes the round visible.
    func commit(_ r: Int, _ algorithm: any RoundAlgorithm, _ trained: TrainedRound?, _ evalMetrics: [(String, Double)],
                _ clock: PhaseClock) throws -> CampaignOutcome {
        let rv = trained.map { Dictionary($0.rollout.values(), uniquingKeysWith: { a, _ in a }) } ?? [:]
        let alarms = trained == nil ? [] : self.alarms(rv, evalMetrics)
        for a in alarms { log("round \(r): ALARM \(a)") }
        let t = try clock.enter("commit")
        let tmp = try trained?.directory ?? store.beginRound(0)
        let optimizer = trained?.optimizer ?? AdamW(layout: initialPolicy.trainableLayout, config: adamwConfig)
        let sha = try saveCheckpoint(trained?.policy ?? initialPolicy, optimizer, into: tmp)
        var state = RoundState(round: r, promptCursor: trained.map { $0.previous.promptCursor + $0.prompts } ?? 0,
                               optimizerStep: optimizer.step, reference: config.reference.rawValue, policySHA256: sha,
                               klCoef: trained?.previous.klCoef, base: basePin?.path, baseSHA256: basePin?.sha256)
        if trained == nil { try algorithm.saveInitialState(into: tmp, state: &state) } else { _ = try algorithm.saveState(into: tmp, state: &state) }
        var metrics: [(String, JSONValue)] = [("round", .number(Double(r)))]
        metrics += evalMetrics.map { ($0.0, json($0.1)) }
        if let trained {
            metrics += (trained.rows.metrics + trained.trainMetrics + trained.labelMetrics).map { ($0.0, json($0.1)) }
            for k in ["score_mean", "length_mean", "length_score_corr", "pair_length_gap", "distinct_2", "duplicate_rate"] {
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
        if !alarms.isEmpty && config.alarms.action == .stop {
            return .alarm(round: r, message: alarms.joined(separator: "; "))
        }
        return .finished(rounds: r)
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
