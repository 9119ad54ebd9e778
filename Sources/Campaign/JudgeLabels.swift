// A round's labels from an HTTP judge (labeller type http): every sample judged in one batch (the
// judge keeps `concurrency` requests in flight), each exchange kept in the sample's label for the
// buffer, and the round refused when too many samples stay unscored (labeller.max_unscored).

import Labeling
import Rollouts
import Sampling

extension Campaign {
    /// One JudgeCall per sample (in sample order) and the round's judge/* metrics.
    func judgeLabels(_ judge: HTTPJudge, _ r: Int, _ samples: [Sample], _ texts: [String], _ picked: [Int])
        throws -> ([JudgeCall], [(String, Double)])
    {
        let requests = promptRuns(samples).map { run in
            let prompt = train[picked[samples[run.lowerBound].promptIndex]]
            return LabelRequest(prompt: prompt.text, promptIDs: prompt.ids, answer: prompt.answer,
                                responses: Array(texts[run]), responseIDs: samples[run].map(\.tokens))
        }
        _ = judge.takeMetrics()
        let calls: [JudgeCall]
        do { calls = try judge.judge(requests).flatMap { $0 } } catch let e as LabelError where !e.interrupted {
            throw CampaignError("round \(r): \(e.description); the round was not committed")
        }
        let metrics = judge.takeMetrics()
        let unscored = calls.filter { $0.score == nil }.count
        let share = calls.isEmpty ? 0 : Double(unscored) / Double(calls.count)
        let everyScore = RoundAlgorithms.type(of: config.algorithm.type).needsEveryScore
        let limit = everyScore ? 0 : judge.config.maxUnscored
        if share > limit {
            let first = calls.firstIndex { $0.score == nil }!
            let why = everyScore ? "\(config.algorithm.type.rawValue) needs every sample scored" : "labeller.max_unscored is \(limit)"
            throw CampaignError("round \(r): \(unscored) of \(calls.count) samples unscored by the judge at \(judge.config.url) (\(why)); first: sample \(first): \(calls[first].error ?? "no verdict"); the round was not committed")
        }
        if unscored > 0 { log("round \(r): \(unscored) of \(calls.count) samples unscored by the judge (left out of pairs)") }
        return (calls, metrics)
    }

    /// Sample i's label: its score, and its judge exchange when an HTTP judge gave it (a pairwise
    /// judge gives neither: `scores` is empty and the exchanges are the round's comparisons).
    func label(_ i: Int, _ scores: [Float], _ judged: [JudgeCall]) -> Label {
        guard i < judged.count else { return Label(labeller: labeller.id, score: i < scores.count ? scores[i] : nil) }
        let c = judged[i]
        return Label(labeller: labeller.id, score: c.score, verdict: c.verdict, judge: c.exchange)
    }
}

extension JudgeCall {
    /// The exchange as the buffer keeps it.
    var exchange: JudgeExchange {
        JudgeExchange(prompt: prompt, reply: reply, verdict: verdict, latencyS: Float(latencyS), retries: retries, error: error)
    }
}
