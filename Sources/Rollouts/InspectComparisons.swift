// `rondo inspect` on the buffer of a pairwise-judged round (`labeller.mode: pairwise`): its
// `comparison` lines counted in the summary (pairs asked, kept, ties, order disagreements,
// unjudged: the round's judge/* metrics) and listed with `--comparisons OUTCOME` (as text, or the
// lines themselves with `--export jsonl`). With `--where`, an asked pair counts when both its
// samples match.

import Foundation

extension InspectJob {
    /// Makes the scan's asked pairs from its comparison lines. A salvaged (damaged) buffer whose
    /// comparisons do not pair up gets a note instead of an error.
    static func judge(_ s: inout Scan, matched: Set<Int>?, salvage: Bool) throws {
        guard !s.comparisons.isEmpty else { return }
        do {
            s.judged = try JudgedPair.pairs(s.comparisons)
        } catch let e as BufferError {
            guard salvage else { throw BufferError(e.kind, "\(s.url.path): \(e.description)") }
            s.note += "salvage: the comparisons of \(s.url.path) are not counted: \(e.description)\n"
            return
        }
        if let matched { s.judged = s.judged.filter { matched.contains($0.first.a) && matched.contains($0.first.b) } }
    }

    /// The summary's values, with the judge's counts when the buffer has comparison lines.
    static func values(_ s: Scan) -> [(String, SummaryValue)] {
        guard !s.comparisons.isEmpty else { return s.summary.values() }
        let c = JudgedPairCounts(s.judged)
        return s.summary.values() + [
            ("judge_pairs_asked", .int(c.asked)), ("judge_pairs_kept", .int(c.kept)), ("judge_ties", .int(c.ties)),
            ("judge_order_disagreements", .int(c.disagreements)), ("judge_pairs_unjudged", .int(c.unjudged)),
        ]
    }

    /// One line per asked pair with one of `outcomes`: each order's preference, then the outcome.
    static func comparisonList(_ s: Scan, _ outcomes: Set<JudgedPair.Outcome>) -> String {
        let shown = s.judged.filter { outcomes.contains($0.outcome) }
        let which = outcomes.count == JudgedPair.Outcome.allCases.count ? "" : " (\(outcomes.map(\.rawValue).sorted().joined(separator: ", ")))"
        var out = "buffer   \(s.url.path)\n"
        guard !s.comparisons.isEmpty else { return out + "no comparison lines: this round was not judged pairwise\n" }
        out += "\(shown.count) of \(s.judged.count) asked pairs\(which); each order as asked (A/B) → the sample it prefers\n"
        for j in shown {
            out += "  prompt \(j.promptIndex)  \(order(j.first))   \(order(j.second))   \(outcome(j))\n"
        }
        return out
    }

    /// "#3/#7 → #7": the order's samples as A/B, and the one its verdict prefers (tie, or ? unparsed).
    static func order(_ c: ComparisonRecord) -> String {
        let pick: String
        if c.judge.error != nil || c.judge.verdict == nil { pick = "?" } else {
            pick = JudgedPair.winner(c, c.judge.verdict!).map { "#\($0)" } ?? "tie"
        }
        return "#\(c.a)/#\(c.b) → \(pick)"
    }

    static func outcome(_ j: JudgedPair) -> String {
        switch j.outcome {
        case .kept: return "kept: #\(j.chosen!) over #\(j.rejected!)"
        case .tie: return "tie"
        case .disagreement: return "order disagreement"
        case .unjudged:
            let c = j.unjudgedComparison!
            var why = c.judge.error ?? "no verdict in the reply"
            if why.count > 120 { why = String(why.prefix(120)) + "…" }
            return "unjudged (#\(c.a)/#\(c.b): \(why.replacingOccurrences(of: "\n", with: "⏎")))"
        }
    }

    /// The comparison lines (both orders) of the asked pairs with one of `outcomes`, as in the buffer.
    static func comparisonLines(_ s: Scan, _ outcomes: Set<JudgedPair.Outcome>) -> String {
        var json = JSONWriter(), out = ""
        for j in s.judged where outcomes.contains(j.outcome) {
            for c in [j.first, j.second] {
                json.reset(); json.write(c)
                out += String(decoding: json.bytes, as: UTF8.self) + "\n"
            }
        }
        return out
    }
}
