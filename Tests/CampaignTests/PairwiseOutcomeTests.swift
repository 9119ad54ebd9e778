// The rules behind pairwise judging, without a server: the seeded candidate pairs (distinct, in
// range, all of them when fewer than asked, a pure function of round seed and prompt) and what two
// orders of verdicts make (kept pair, tie, order disagreement, unjudged), with the checks on how
// a buffer's comparisons must come.

import Rollouts
import Testing
@testable import Campaign

private func comparison(_ a: Int, _ b: Int, _ verdict: String?, prompt: Int = 0) -> ComparisonRecord {
    ComparisonRecord(promptIndex: prompt, a: a, b: b,
                     judge: JudgeExchange(prompt: "q", reply: verdict.map { "Verdict: \($0)" } ?? "??", verdict: verdict,
                                          latencyS: 0.1, retries: 0, error: verdict == nil ? "the reply does not match labeller.parse" : nil))
}

@Suite struct PairwiseOutcomeTests {
    @Test func candidatePairsAreDistinctSeededAndCoverSmallGroups() {
        for n in 2...9 {
            let total = n * (n - 1) / 2
            #expect(Set((0..<total).map { PairCandidates.unrank($0, n) }.map { [$0.0, $0.1] }).count == total)
            for count in [1, 2, 5, 100] {
                let pairs = PairCandidates.draw(count: count, samples: n, roundSeed: 99, prompt: 7)
                #expect(pairs.count == min(count, total))
                #expect(pairs.allSatisfy { 0 <= $0.0 && $0.0 < $0.1 && $0.1 < n })
                #expect(Set(pairs.map { [$0.0, $0.1] }).count == pairs.count, "n \(n), count \(count): a pair drawn twice")
                #expect(pairs.map { [$0.0, $0.1] } == PairCandidates.draw(count: count, samples: n, roundSeed: 99, prompt: 7).map { [$0.0, $0.1] })
            }
        }
        // The draw follows the key: over many prompts (or rounds) the first pair of 8 samples varies.
        let byPrompt = Set((0..<64).map { p in PairCandidates.draw(count: 1, samples: 8, roundSeed: 5, prompt: p).map { [$0.0, $0.1] } })
        let byRound = Set((0..<64).map { s in PairCandidates.draw(count: 1, samples: 8, roundSeed: UInt64(s), prompt: 3).map { [$0.0, $0.1] } })
        #expect(byPrompt.count > 10 && byRound.count > 10, "\(byPrompt.count) \(byRound.count)")
    }

    @Test func bothOrdersMustAgree() throws {
        let o = try PairwiseOutcome([
            comparison(0, 1, "A"), comparison(1, 0, "B"),      // 0 preferred in both orders: kept
            comparison(2, 3, "B"), comparison(3, 2, "A"),      // 3 preferred: kept
            comparison(0, 2, "tie"), comparison(2, 0, "tie"),  // tie
            comparison(1, 3, "A"), comparison(3, 1, "A"),      // position bias: disagreement
            comparison(0, 3, "tie"), comparison(3, 0, "B"),    // tie against a preference: disagreement
            comparison(1, 2, "A"), comparison(2, 1, nil),      // unparseable: unjudged
        ])
        #expect(o.pairs == [PairRecord(promptIndex: 0, chosen: 0, rejected: 1, margin: 1, how: "judge_pairwise"),
                            PairRecord(promptIndex: 0, chosen: 3, rejected: 2, margin: 1, how: "judge_pairwise")])
        #expect(o.asked == 6 && o.ties == 1 && o.disagreements == 2 && o.unjudged == 1)
        #expect(o.firstUnjudged?.a == 2 && o.firstUnjudged?.b == 1)
        let m = Dictionary(o.metrics, uniquingKeysWith: { a, _ in a })
        #expect(m["judge/pairs_asked"] == 6 && m["judge/pairs_kept"] == 2 && m["judge/ties"] == 1)
        #expect(m["judge/order_disagreements"] == 2 && m["judge/pairs_unjudged"] == 1)
    }

    @Test func comparisonsMustComeInBothOrders() throws {
        #expect(throws: CampaignError.self) { try PairwiseOutcome([comparison(0, 1, "A")]) }
        #expect(throws: CampaignError.self) { try PairwiseOutcome([comparison(0, 1, "A"), comparison(0, 1, "A")]) }
        #expect(throws: CampaignError.self) { try PairwiseOutcome([comparison(0, 1, "A"), comparison(1, 0, "B", prompt: 1)]) }
        let (line, same) = try Campaign.checkJudgedPairs([comparison(0, 1, "A"), comparison(1, 0, "B")], [])
        #expect(!same && line.contains("DIFFERENT"))
    }
}
