// Pairwise judging through the real `rondo` binary against TestSupport's JudgeServer on loopback
// (`labeller: {type: http, mode: pairwise}`, `pairs.strategy: judge_pairwise`): the buffers hold
// both orders of every asked pair, the kept pairs are exactly those whose orders agree (recomputed
// here from the responses with the server's rule), unparseable replies are counted and leave their
// pair unjudged, score metrics are absent, and replay is bit-identical with the server stopped.
// A position-biased judge's disagreements are dropped; too many unjudged pairs refuse the round.

import Campaign
import Foundation
import Model
import Rollouts
import Testing
import TestSupport

private func pairwiseConfig(_ dir: URL, _ server: JudgeServer, rounds: Int, extra: String = "") throws -> URL {
    let template = dir.appendingPathComponent("pairwise.jinja")
    try "Compare for {{ prompt }}\n<A>{{ response_a }}</A>\n<B>{{ response_b }}</B>".write(to: template, atomically: true, encoding: .utf8)
    let url = try smallConfig(dir, rounds: rounds, extra: """
        labeller:
          type: http
          mode: pairwise
          url: \(server.url)
          model: pair-judge
          prompt_template: pairwise.jinja
          parse: 'Verdict: (A|B|tie)'
          concurrency: 4
          timeout_s: 10
          retries: 1
        \(extra)
        """)
    let text = try String(contentsOf: url, encoding: .utf8)
        .replacingOccurrences(of: "pairs: {min_margin: 0.5, max_per_prompt: 2}", with: "pairs: {strategy: judge_pairwise, candidates_per_prompt: 2}")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
}

private struct RoundBuffer {
    var samples: [SampleRecord] = [], comparisons: [ComparisonRecord] = [], pairs: [PairRecord] = []
    var metrics: JSONValue

    init(_ run: URL, _ r: Int) throws {
        let dir = run.appendingPathComponent("rounds/\(String(format: "%06d", r))")
        metrics = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: dir.appendingPathComponent("metrics.json")))
        var (s, c, p): ([SampleRecord], [ComparisonRecord], [PairRecord]) = ([], [], [])
        try BufferReader(url: dir.appendingPathComponent("rollouts.jsonl.zst")).read {
            switch $0 {
            case .sample(let x): s.append(x)
            case .comparison(let x): c.append(x)
            case .pair(let x): p.append(x)
            case .header: break
            }
        }
        (samples, comparisons, pairs) = (s, c, p)
    }

    /// What the buffer's comparisons should make, from the server's rule applied to the responses:
    /// the kept pairs, ties, disagreements and unjudged pairs.
    func expected(biased: Bool) -> (pairs: [PairRecord], ties: Int, disagreements: Int, unjudged: Int) {
        var pairs: [PairRecord] = [], ties = 0, disagreements = 0, unjudged = 0
        for k in stride(from: 0, to: comparisons.count, by: 2) {
            let x = comparisons[k], y = comparisons[k + 1]
            if x.judge.error != nil || y.judge.error != nil { unjudged += 1; continue }
            func winner(_ c: ComparisonRecord) -> Int? {
                let message = "<A>\(samples[c.a].response!)</A>\n<B>\(samples[c.b].response!)</B>"
                let v = JudgeServer.verdict(of: message, biased: biased)
                return v == "A" ? c.a : v == "B" ? c.b : nil
            }
            let (w1, w2) = (winner(x), winner(y))
            if w1 == nil && w2 == nil { ties += 1 } else if let w = w1, w1 == w2 {
                pairs.append(PairRecord(promptIndex: x.promptIndex, chosen: w, rejected: w == x.a ? x.b : x.a, margin: 1, how: "judge_pairwise"))
            } else { disagreements += 1 }
        }
        return (pairs, ties, disagreements, unjudged)
    }

    /// Every asked pair appears in both orders, consecutively, with the rendered prompt and the reply.
    func checkExchanges(_ server: JudgeServer, biased: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(samples.count == 48 && comparisons.count == 2 * 12 * 2, sourceLocation: sourceLocation)
        var asked: Set<[Int]> = []
        for k in stride(from: 0, to: comparisons.count, by: 2) {
            let x = comparisons[k], y = comparisons[k + 1]
            #expect(y.a == x.b && y.b == x.a && x.promptIndex == y.promptIndex, sourceLocation: sourceLocation)
            #expect(samples[x.a].promptIndex == x.promptIndex && samples[x.b].promptIndex == x.promptIndex, sourceLocation: sourceLocation)
            #expect(asked.insert([min(x.a, x.b), max(x.a, x.b)]).inserted, "pair \(x.a)/\(x.b) asked twice", sourceLocation: sourceLocation)
        }
        for c in comparisons {
            let message = "Compare for \(samples[c.a].prompt!)\n<A>\(samples[c.a].response!)</A>\n<B>\(samples[c.b].response!)</B>"
            #expect(c.judge.prompt == message && server.requests.contains(message), sourceLocation: sourceLocation)
            if c.judge.error == nil {
                let v = JudgeServer.verdict(of: message, biased: biased)
                #expect(c.judge.reply == "Verdict: \(v)" && c.judge.verdict == v, sourceLocation: sourceLocation)
            } else {
                #expect(c.judge.reply == "I would rather not say." && c.judge.verdict == nil, sourceLocation: sourceLocation)
            }
        }
        for s in samples {
            #expect(s.label?.labeller == "http:pair-judge" && s.label?.score == nil && s.label?.judge == nil, sourceLocation: sourceLocation)
        }
    }
}

@Suite(.serialized) struct PairwiseJudgeCampaignTests {
    @Test func keptPairsAreTheAgreeingOrdersAndReplayWithTheServerStopped() async throws {
        let server = JudgeServer()
        try await server.start()
        server.fallback(.prefer(biased: false))
        server.script([.unparseable, .unparseable, .unparseable])  // the first three of round 1
        let dir = TemporaryDirectory("rondo-pairwise")
        defer { withExtendedLifetime(dir) {} }
        let run = dir.url.appendingPathComponent("run")
        let config = try pairwiseConfig(dir.url, server, rounds: 2)
        let started = try await offPool { try runRondo(["start", config.path, "--dir", run.path]) }
        #expect(started.status == 0, "\(started.stderr)")
        #expect(try committed(run) == [0, 1, 2])

        var kept = 0
        for r in 1...2 {
            let b = try RoundBuffer(run, r)
            b.checkExchanges(server, biased: false)
            let want = b.expected(biased: false)
            #expect(b.pairs == want.pairs, "round \(r)")
            // Three failed replies leave two or three pairs unjudged (both orders of one pair may fail).
            #expect(b.comparisons.filter { $0.judge.error != nil }.count == (r == 1 ? 3 : 0))
            #expect(want.disagreements == 0 && (r == 1 ? (2...3).contains(want.unjudged) : want.unjudged == 0))
            let m = b.metrics
            #expect(m["judge/requests"]?.double == 48 && m["judge/parse_failures"]?.double == (r == 1 ? 3 : 0))
            #expect(m["judge/pairs_asked"]?.double == 24 && m["judge/pairs_kept"]?.double == Double(want.pairs.count))
            #expect(m["judge/ties"]?.double == Double(want.ties) && m["judge/order_disagreements"]?.double == 0)
            #expect(m["judge/pairs_unjudged"]?.double == Double(want.unjudged))
            #expect(m["train/pairs"]?.double == Double(want.pairs.count))
            #expect(m["rollout/score_mean"] == nil && m["rollout/length_score_corr"] == nil && m["eval/reward_mean"] == nil, "\(m)")
            #expect(m["rollout/length_mean"]?.double != nil)
            kept += want.pairs.count
        }
        #expect(kept > 0, "no pair kept: the test would not exercise the update")
        // No held-out judging: round 0's and every round's evaluation asks nothing.
        #expect(server.requests.count == 2 * 48)

        await server.stop()
        for r in 1...2 {
            let replay = try await offPool { try runRondo(["replay", run.path, "--round", "\(r)"]) }
            #expect(replay.status == 0 && replay.stdout.contains("identical: the replay"), "round \(r): \(replay.stdout) \(replay.stderr)")
            #expect(replay.stdout.contains("comparisons") && !replay.stdout.contains("DIFFERENT"), "\(replay.stdout)")
        }
    }

    @Test func aPositionBiasedJudgesDisagreementsAreDropped() async throws {
        let server = JudgeServer()
        try await server.start()
        server.fallback(.prefer(biased: true))
        let dir = TemporaryDirectory("rondo-pairwise")
        defer { withExtendedLifetime(dir) {} }
        let run = dir.url.appendingPathComponent("run")
        let config = try pairwiseConfig(dir.url, server, rounds: 1)
        let started = try await offPool { try runRondo(["start", config.path, "--dir", run.path]) }
        await server.stop()
        #expect(started.status == 0, "\(started.stderr)")
        let b = try RoundBuffer(run, 1)
        b.checkExchanges(server, biased: true)
        let want = b.expected(biased: true)
        #expect(want.disagreements > 0, "the biased rule never disagreed with itself; the test checks nothing")
        #expect(b.pairs == want.pairs && want.unjudged == 0)
        #expect(!b.pairs.isEmpty, "the biased rule kept no pair; the test checks only dropping")
        #expect(b.metrics["judge/order_disagreements"]?.double == Double(want.disagreements))
        #expect(b.metrics["judge/pairs_kept"]?.double == Double(24 - want.disagreements - want.ties))
        #expect(b.metrics["judge/ties"]?.double == Double(want.ties))
        // `rondo inspect` counts the same from the buffer's comparison lines and lists the disagreements.
        let inspect = try await offPool { try runRondo(["inspect", run.path, "--round", "1", "--json"]) }
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let o = try JSONDecoder().decode(JSONValue.self, from: Data(inspect.stdout.utf8))
        for (key, metric) in [("judge_pairs_asked", "judge/pairs_asked"), ("judge_pairs_kept", "judge/pairs_kept"), ("judge_ties", "judge/ties"),
                              ("judge_order_disagreements", "judge/order_disagreements"), ("judge_pairs_unjudged", "judge/pairs_unjudged")] {
            #expect(o[key]?.double != nil && o[key]?.double == b.metrics[metric]?.double, "\(key): \(inspect.stdout)")
        }
        let listed = try await offPool { try runRondo(["inspect", run.path, "--round", "1", "--comparisons", "order_disagreement"]) }
        #expect(listed.stdout.split(separator: "\n").filter { $0.hasSuffix("order disagreement") }.count == want.disagreements, "\(listed.stdout)")
    }

    @Test func tooManyUnjudgedPairsRefuseTheRound() async throws {
        let server = JudgeServer()
        try await server.start()
        server.fallback(.unparseable)
        let dir = TemporaryDirectory("rondo-pairwise")
        defer { withExtendedLifetime(dir) {} }
        let run = dir.url.appendingPathComponent("run")
        let config = try pairwiseConfig(dir.url, server, rounds: 1, extra: "  max_unscored: 0.5")
        let r = try await offPool { try runRondo(["start", config.path, "--dir", run.path]) }
        await server.stop()
        #expect(r.status != 0)
        #expect(r.stderr.contains("24 of 24 asked pairs unjudged") && r.stderr.contains("labeller.max_unscored is 0.5"), "\(r.stderr)")
        #expect(r.stderr.contains("does not match labeller.parse") && r.stderr.contains(server.url), "\(r.stderr)")
        #expect(try committed(run) == [0])
    }
}
