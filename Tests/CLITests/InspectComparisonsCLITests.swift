// `rondo inspect` on a pairwise-judged round's buffer: its comparison lines counted in the summary
// (pairs asked, kept, ties, order disagreements, unjudged) and listed with --comparisons (text, or
// the lines themselves with --export jsonl), --where restricting both to pairs of matching samples.

import Foundation
import Model
import Rollouts
import Testing
import TestSupport

@Suite struct InspectComparisonsCLITests {
    /// 2 prompts × 4 unscored samples and 5 asked pairs: 2 kept, 1 tie, 1 order disagreement, 1 unjudged.
    func makePairwiseBuffer(_ dir: URL) throws -> URL {
        let url = dir.appendingPathComponent("pairwise.jsonl.zst")
        let w = try BufferWriter(url: url, header: BufferHeader(round: 2, policySHA256: String(repeating: "d", count: 64)))
        for i in 0..<8 {
            try w.append(SampleRecord(id: i, promptIndex: i / 4, sampleIndex: i % 4, prompt: "what is \(i)?", promptIDs: [0, 5],
                                      responseIDs: [Int32(i), 3], response: "answer \(i)", logprobs: [-0.5, -0.5],
                                      finishReason: "eos", seed: SeedStream(seed: 7, stream: UInt64(i))))
        }
        func c(_ a: Int, _ b: Int, _ verdict: String?) -> ComparisonRecord {
            ComparisonRecord(promptIndex: a / 4, a: a, b: b,
                             judge: JudgeExchange(prompt: "which is better?", reply: verdict.map { "Verdict: \($0)" } ?? "I cannot decide",
                                                  verdict: verdict, latencyS: 0.2, retries: 0,
                                                  error: verdict == nil ? "the reply does not match labeller.parse" : nil))
        }
        for comparison in [c(0, 1, "A"), c(1, 0, "B"),     // 0 preferred in both orders: kept
                           c(2, 3, "tie"), c(3, 2, "tie"),  // tie
                           c(4, 5, "A"), c(5, 4, "A"),      // the first position wins: order disagreement
                           c(6, 7, "B"), c(7, 6, nil),      // unparseable: unjudged
                           c(4, 6, "B"), c(6, 4, "A")] {    // 6 preferred: kept
            try w.append(comparison)
        }
        try w.append(PairRecord(promptIndex: 0, chosen: 0, rejected: 1, margin: 1, how: "judge_pairwise"))
        try w.append(PairRecord(promptIndex: 1, chosen: 6, rejected: 4, margin: 1, how: "judge_pairwise"))
        try w.finish()
        return url
    }

    @Test func summaryCountsAndListsComparisons() throws {
        try withTemporaryDirectory { dir in
            let url = try makePairwiseBuffer(dir)
            let text = try runRondo(["inspect", url.path])
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stdout.contains("judge    pairs asked 5   kept 2   ties 1   order disagreements 1   unjudged 1"), "\(text.stdout)")
            let j = try runRondo(["inspect", url.path, "--json"])
            let o = try JSONDecoder().decode(JSONValue.self, from: Data(j.stdout.utf8))
            #expect(o["judge_pairs_asked"]?.int == 5 && o["judge_pairs_kept"]?.int == 2 && o["judge_ties"]?.int == 1)
            #expect(o["judge_order_disagreements"]?.int == 1 && o["judge_pairs_unjudged"]?.int == 1 && o["pairs"]?.int == 2)

            // Listing: every pair, or one outcome.
            let all = try runRondo(["inspect", url.path, "--comparisons", "all"])
            #expect(all.status == 0, "\(all.stderr)")
            let lines = all.stdout.split(separator: "\n").filter { $0.hasPrefix("  prompt ") }
            #expect(lines.count == 5, "\(all.stdout)")
            #expect(lines[0].contains("#0/#1 → #0") && lines[0].contains("#1/#0 → #0") && lines[0].hasSuffix("kept: #0 over #1"), "\(lines[0])")
            #expect(lines[1].hasSuffix("tie") && lines[1].contains("#2/#3 → tie"), "\(lines[1])")
            #expect(lines[2].contains("#4/#5 → #4") && lines[2].contains("#5/#4 → #5") && lines[2].hasSuffix("order disagreement"), "\(lines[2])")
            #expect(lines[3].contains("#7/#6 → ?") && lines[3].contains("unjudged (#7/#6: the reply does not match labeller.parse)"), "\(lines[3])")
            #expect(lines[4].hasPrefix("  prompt 1") && lines[4].hasSuffix("kept: #6 over #4"), "\(lines[4])")
            let dis = try runRondo(["inspect", url.path, "--comparisons", "order_disagreement"])
            #expect(dis.stdout.contains("1 of 5 asked pairs (order_disagreement)"), "\(dis.stdout)")
            #expect(dis.stdout.split(separator: "\n").filter { $0.hasPrefix("  prompt ") }.count == 1)

            // --export jsonl: the kept pairs' comparison lines, both orders, as the buffer has them.
            let e = try runRondo(["inspect", url.path, "--comparisons", "kept", "--export", "jsonl"])
            let exported = try e.stdout.split(separator: "\n").map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
            #expect(exported.map { [$0["a"]?.int, $0["b"]?.int] } == [[0, 1], [1, 0], [4, 6], [6, 4]], "\(e.stdout)")
            #expect(exported.allSatisfy { $0["kind"]?.string == "comparison" && $0["judge"]?["verdict"]?.string != nil })

            // --where: only pairs whose two samples match.
            let f = try runRondo(["inspect", url.path, "--json", "--where", "prompt_index == 1"])
            let fo = try JSONDecoder().decode(JSONValue.self, from: Data(f.stdout.utf8))
            #expect(fo["judge_pairs_asked"]?.int == 3 && fo["judge_pairs_kept"]?.int == 1 && fo["judge_ties"]?.int == 0, "\(f.stdout)")

            // Bad values and combinations are refused.
            let bad = try runRondo(["inspect", url.path, "--comparisons", "ties"])
            #expect(bad.status != 0 && bad.stderr.contains("order_disagreement"), "\(bad.stderr)")
            #expect(try runRondo(["inspect", url.path, "--comparisons", "all", "--json"]).status != 0)
        }
    }

    @Test func buffersWithoutComparisonsAreUnchanged() throws {
        try withTemporaryDirectory { dir in
            let url = try InspectCLITests().makeBuffer(dir)
            let text = try runRondo(["inspect", url.path])
            #expect(text.status == 0 && !text.stdout.contains("judge "), "\(text.stdout)")
            let o = try JSONDecoder().decode(JSONValue.self, from: Data(try runRondo(["inspect", url.path, "--json"]).stdout.utf8))
            #expect(o["judge_pairs_asked"] == nil)
            let list = try runRondo(["inspect", url.path, "--comparisons", "all"])
            #expect(list.status == 0 && list.stdout.contains("not judged pairwise"), "\(list.stdout)")
        }
    }
}
