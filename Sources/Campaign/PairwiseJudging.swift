// Pairwise judging (`labeller: {type: http, mode: pairwise}` with `pairs.strategy: judge_pairwise`,
// docs/judges.md): per prompt, `pairs.candidates_per_prompt` distinct sample pairs are drawn from a
// Philox stream keyed by the round seed and the prompt's index in the training set (the same pairs
// whatever else the round samples); each pair is asked in both orders, A/B then B/A, because LLM
// judges favour a position; a pair is kept only when both orders name the same sample, and the
// kept verdicts are the round's DPO pairs (chosen = the preferred sample). Both orders saying `tie`
// drops the pair (judge/ties); different answers drop it (judge/order_disagreements); an
// unparseable reply in either order leaves it unjudged (judge/parse_failures counts the replies),
// and more than `labeller.max_unscored` of the asked pairs unjudged refuses the round. Every
// exchange is a `comparison` line of the buffer, from which replay rebuilds and checks the pairs
// (the two orders' rules: Rollouts/Comparisons.swift, shared with `rondo inspect`).

import Kernels
import Labeling
import Rollouts
import Sampling

/// The sample pairs asked of a pairwise judge.
enum PairCandidates {
    /// Up to `count` distinct pairs (i, j), i < j, of a prompt's `n` samples: a partial Fisher–Yates
    /// shuffle of the n(n−1)/2 pairs, its t-th swap drawn from block t of the stream.
    static func draw(count: Int, samples n: Int, roundSeed: UInt64, prompt: Int) -> [(Int, Int)] {
        let total = n * (n - 1) / 2
        let k = min(count, total)
        let stream = Philox(seed: roundSeed ^ 0x5041_4952, stream: UInt64(prompt))  // "PAIR"
        var order = Array(0..<total)
        for t in 0..<k {
            let (w, _, _, _) = stream.block(UInt64(t))
            order.swapAt(t, t + Int((UInt64(w) * UInt64(total - t)) >> 32))
        }
        return order.prefix(k).map { unrank($0, n) }
    }

    /// The pair at position `index` of (0,1), (0,2), …, (0,n−1), (1,2), …
    static func unrank(_ index: Int, _ n: Int) -> (Int, Int) {
        var i = 0, rest = index
        while rest >= n - 1 - i { rest -= n - 1 - i; i += 1 }
        return (i, i + 1 + rest)
    }
}

/// What a round's comparisons make (Rollouts' JudgedPair): the kept pairs and the counts behind
/// judge/pairs_*. The comparisons come two by two, (a, b) then (b, a), as the round asks and the
/// buffer keeps them.
struct PairwiseOutcome {
    let pairs: [PairRecord]
    let counts: JudgedPairCounts
    /// The first comparison of the first unjudged pair.
    let firstUnjudged: ComparisonRecord?
    var asked: Int { counts.asked }
    var ties: Int { counts.ties }
    var disagreements: Int { counts.disagreements }
    var unjudged: Int { counts.unjudged }

    init(_ comparisons: [ComparisonRecord]) throws {
        let judged: [JudgedPair]
        do { judged = try JudgedPair.pairs(comparisons) } catch let e as BufferError { throw CampaignError(e.description) }
        pairs = judged.compactMap { j in
            guard let chosen = j.chosen, let rejected = j.rejected else { return nil }
            return PairRecord(promptIndex: j.promptIndex, chosen: chosen, rejected: rejected, margin: 1, how: PairStrategy.judgePairwise.rawValue)
        }
        counts = JudgedPairCounts(judged)
        firstUnjudged = judged.lazy.compactMap(\.unjudgedComparison).first
    }

    var metrics: [(String, Double)] {
        [("judge/pairs_asked", Double(asked)), ("judge/pairs_kept", Double(pairs.count)), ("judge/ties", Double(ties)),
         ("judge/order_disagreements", Double(disagreements)), ("judge/pairs_unjudged", Double(unjudged))]
    }

    var rows: RoundRows {
        RoundRows(pairs: pairs, summary: "\(pairs.count) of \(asked) judged pairs kept (\(ties) ties, \(disagreements) order disagreements, \(unjudged) unjudged), updating")
    }
}

extension Campaign {
    /// Asks the judge about each candidate pair in both orders; the comparisons (in the order the
    /// buffer keeps them) and the round's judge/* metrics.
    func judgePairs(_ judge: HTTPJudge, _ r: Int, _ samples: [Sample], _ texts: [String], _ picked: [Int])
        throws -> ([ComparisonRecord], [(String, Double)])
    {
        var asks: [PairwiseAsk] = [], slots: [(p: Int, a: Int, b: Int)] = []
        for run in promptRuns(samples) {
            let (start, p) = (run.lowerBound, samples[run.lowerBound].promptIndex)
            let prompt = train[picked[p]]
            for (i, j) in PairCandidates.draw(count: config.pairs.candidates, samples: run.count, roundSeed: config.roundSeed(r), prompt: picked[p]) {
                for (a, b) in [(start + i, start + j), (start + j, start + i)] {
                    asks.append(PairwiseAsk(prompt: prompt.text, answer: prompt.answer, responseA: texts[a], responseB: texts[b]))
                    slots.append((p, a, b))
                }
            }
        }
        _ = judge.takeMetrics()
        let calls: [JudgeCall]
        do { calls = try judge.compare(asks) } catch let e as LabelError where !e.interrupted {
            throw CampaignError("round \(r): \(e.description); the round was not committed")
        }
        let comparisons = zip(slots, calls).map { s, c in ComparisonRecord(promptIndex: s.p, a: s.a, b: s.b, judge: c.exchange) }
        let outcome = try PairwiseOutcome(comparisons)
        let share = outcome.asked == 0 ? 0 : Double(outcome.unjudged) / Double(outcome.asked)
        if share > judge.config.maxUnscored, let c = outcome.firstUnjudged {
            throw CampaignError("round \(r): \(outcome.unjudged) of \(outcome.asked) asked pairs unjudged by the judge at \(judge.config.url) (labeller.max_unscored is \(judge.config.maxUnscored)); first: samples \(c.a)/\(c.b): \(c.judge.error ?? "no verdict"); the round was not committed")
        }
        if outcome.unjudged > 0 { log("round \(r): \(outcome.unjudged) of \(outcome.asked) asked pairs unjudged (an unparseable reply)") }
        return (comparisons, judge.takeMetrics() + outcome.metrics)
    }

    /// Replay: the pairs the buffer's comparisons make must be the buffer's pairs.
    static func checkJudgedPairs(_ comparisons: [ComparisonRecord], _ pairs: [PairRecord]) throws -> (String, Bool) {
        let rebuilt = try PairwiseOutcome(comparisons)
        let same = rebuilt.pairs == pairs
        return ("pairs from the judge's \(comparisons.count) comparisons: \(rebuilt.pairs.count) rebuilt, \(pairs.count) in the buffer, \(same ? "identical" : "DIFFERENT")\n", same)
    }
}

extension CampaignConfig {
    /// Pairwise judging goes with judge_pairwise pairs and DPO, and they with it; its pair keys.
    func validatePairwise(_ bad: (String, String) -> CampaignError) throws {
        let pairwise = labeller.type == .http && labeller.http?.mode == .pairwise
        let judged = pairs.strategy == .judgePairwise
        if pairwise && !judged {
            throw bad("pairs.strategy", "must be judge_pairwise with labeller.mode: pairwise (a pairwise judge gives verdicts about pairs, no scores to rank); found \(pairs.strategy.rawValue)")
        }
        if judged && !pairwise {
            let found = labeller.type == .http ? "labeller.mode: pointwise" : "labeller.type: \(labeller.type.rawValue)"
            throw bad("pairs.strategy", "judge_pairwise needs labeller: {type: http, mode: pairwise}; found \(found)")
        }
        if !judged {
            if pairs.candidatesPerPrompt != nil { throw bad("pairs.candidates_per_prompt", "only applies to pairs.strategy: judge_pairwise") }
            return
        }
        if algorithm.type != .dpo {
            throw bad("algorithm.type", "must be dpo with labeller.mode: pairwise (its verdicts are preference pairs, which only DPO trains on; \(algorithm.type.rawValue) needs scores — use a pointwise labeller); found \(algorithm.type.rawValue)")
        }
        if pairs.candidates < 1 { throw bad("pairs.candidates_per_prompt", "must be ≥ 1") }
        if pairs.minMargin != 0 { throw bad("pairs.min_margin", "is not used by judge_pairwise (verdicts have no margin); remove it") }
        if pairs.maxPerPrompt != 1 { throw bad("pairs.max_per_prompt", "is not used by judge_pairwise; set pairs.candidates_per_prompt (pairs asked per prompt) instead") }
        if !pairs.skipTies { throw bad("pairs.skip_ties", "must be true with judge_pairwise (a tie makes no preference pair)") }
    }
}
