// `rondo report`'s pieces: SVG paths and bars against the metric values and the axes, charts that
// skip metrics a run lacks (DPO vs PPO keys), alarm marks, escaping, and the best and worst samples
// read from a real rollout buffer.

@testable import Campaign
import Foundation
import Model
import Rollouts
import Testing
import TestSupport

/// A run from per-round metrics (nil values are left out of the row).
func reportRun(_ name: String, _ rows: [[String: Double?]], alarms: [Int: [String]] = [:], config: String = "seed: 1\n") -> ReportRun {
    let objects = rows.enumerated().map { r, row -> [String: JSONValue] in
        var o: [String: JSONValue] = ["round": .number(Double(r))]
        for (k, v) in row { if let v { o[k] = .number(v) } }
        if let a = alarms[r] { o["alarms"] = .array(a.map { .string($0) }) }
        return o
    }
    return ReportRun(name: name, directory: URL(fileURLWithPath: "/tmp/\(name)"), rows: objects, configText: config,
                     algorithm: "dpo", labeller: "verifier")
}

/// The value of attribute `name` in every element of `html` that contains `marker`.
func attributes(_ name: String, in html: String, where marker: String) -> [String] {
    html.components(separatedBy: "<").filter { $0.contains(marker) }.compactMap { el in
        guard let r = el.range(of: " \(name)=\"") else { return nil }
        return String(el[r.upperBound...].prefix { $0 != "\"" })
    }
}

/// "M1 2 L3 4 M5 6" → [[(1,2),(3,4)], [(5,6)]].
func segments(_ d: String) -> [[(Double, Double)]] {
    var out: [[(Double, Double)]] = []
    let parts = d.split(separator: " ")
    var i = 0
    while i + 1 < parts.count {
        let cmd = parts[i].first!, x = Double(parts[i].dropFirst())!, y = Double(parts[i + 1])!
        if cmd == "M" { out.append([]) }
        out[out.count - 1].append((x, y))
        i += 2
    }
    return out
}

func expectPoints(_ actual: [(Double, Double)], _ expected: [(Double, Double)], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(actual) vs \(expected)", sourceLocation: sourceLocation)
    for (a, e) in zip(actual, expected) {
        // Written with 2 decimals; a NaN fails the comparison.
        #expect(abs(a.0 - e.0) <= 0.006 && abs(a.1 - e.1) <= 0.006, "point \(a) expected \(e)", sourceLocation: sourceLocation)
    }
}

@Suite struct ReportTests {
    // The frame's geometry: 460 × 230 with margins left 58, right 12, top 12, bottom 34.
    let left = 58.0, top = 12.0, plotW = 390.0, plotH = 184.0

    @Test func linePathFollowsTheMetricsAndBreaksAtAMissingRound() throws {
        let run = reportRun("a", [["eval/accuracy": 0.25], ["eval/accuracy": 0.3], ["eval/accuracy": nil], ["eval/accuracy": 0.5]])
        let chart = ReportChart(title: "accuracy", series: [ReportSeries("eval/accuracy", "acc")], includeZero: true)
        let html = chart.html([run])
        // Axes: rounds 0…3 padded by half a round; values 0…0.5 on 0.1 ticks (zero included).
        let f = chart.frame([run], chart.series)
        #expect(f.x.lo == -0.5 && f.x.hi == 3.5 && f.x.ticks == [0, 1, 2, 3])
        #expect(f.y.lo == 0 && abs(f.y.hi - 0.5) < 1e-12 && f.y.ticks.count == 6)
        let px = { (r: Double) in self.left + (r + 0.5) / 4 * self.plotW }
        let py = { (v: Double) in self.top + (0.5 - v) / 0.5 * self.plotH }
        let d = try #require(attributes("d", in: html, where: "data-key=\"eval/accuracy\"").first)
        let segs = segments(d)
        #expect(segs.count == 2, "\(d)")
        expectPoints(segs.first ?? [], [(px(0), py(0.25)), (px(1), py(0.3))])
        expectPoints(segs.last ?? [], [(px(3), py(0.5))])
        // Every drawn value has a marker (the lone round-3 point shows), none for the missing round.
        #expect(attributes("cx", in: html, where: "circle").compactMap(Double.init).count == 3)
        #expect(html.contains(">0.5</text>") && html.contains(">0</text>"))
    }

    @Test func niceAxesCoverTheDataOnOneTwoFiveSteps() {
        for values in [[0.23, 0.48], [3.24, 3.53], [607, 592, 580], [1e-7, 2.1], [-0.3, 0.2], [5, 5]] {
            let a = ReportAxis.nice(values)
            #expect(a.lo <= values.min()! && a.hi >= values.max()! && a.lo < a.hi, "\(values) → \(a)")
            let step = a.ticks[1] - a.ticks[0]
            let mantissa = step / pow(10, log10(step).rounded(.down))
            #expect([1.0, 2, 5, 10].contains { abs(mantissa - $0) < 1e-9 }, "\(values): step \(step)")
            #expect(a.ticks.count >= 2 && a.ticks.count <= 12)
        }
        #expect(ReportAxis.rounds(0, 40).ticks.count <= 12)
    }

    @Test func dpoAndPPORunsDrawTheirOwnKeysAndSkipAbsentOnes() {
        let dpo = reportRun("dpo", [["eval/accuracy": 0.2], ["eval/accuracy": 0.3, "loss": 0.66, "train/pairs": 600]])
        var ppo = reportRun("ppo", [["eval/accuracy": 0.2], ["eval/accuracy": 0.25, "loss": 0.1, "train/samples": 48]])
        ppo.algorithm = "ppo"
        let charts = ReportChart.standard(labeller: "verifier")
        let examples = charts.first { $0.title.hasPrefix("Training examples") }!
        let html = examples.html([dpo, ppo])
        #expect(attributes("data-run", in: html, where: "data-key=\"train/pairs\"") == ["dpo"])
        #expect(attributes("data-run", in: html, where: "data-key=\"train/samples\"") == ["ppo"])
        // Compared runs: one colour per run.
        let colours = attributes("stroke", in: html, where: "class=\"series\"")
        #expect(colours.count == 2 && colours[0] != colours[1])
        #expect(html.contains("dpo: DPO pairs") && html.contains("ppo: PPO samples"))
        // A chart none of whose keys any run has is a note, not an empty plot.
        let kl = charts.first { $0.title.hasPrefix("KL") }!.html([dpo, ppo])
        #expect(kl.contains("Not drawn: no round records eval/kl_to_reference") && !kl.contains("<svg"))
        // One DPO run: PPO's keys are not "missing"; a DPO key it lacks is named.
        let loss = charts.first { $0.title == "Loss" }!.html([dpo])
        #expect(loss.contains("Not recorded by these runs: nll_loss.") && !loss.contains("loss/policy_avg"))
        // Round 0 only (no loss yet): the loss chart is skipped with a note, the page still renders.
        let zero = reportRun("zero", [["eval/accuracy": 0.245]])
        let page = ReportHTML.page([zero], samples: [nil], options: ReportOptions())
        #expect(page.contains("Not drawn: no round records loss") && page.contains("No round with a rollout buffer yet"))
    }

    @Test func alarmsAreMarkedAtTheirRoundAndEscaped() throws {
        let run = reportRun("a", [["eval/distinct_2": 0.2], ["eval/distinct_2": 0.1], ["eval/distinct_2": 0.01]],
                            alarms: [2: ["mode collapse: eval distinct-2 = 0.01 <x>"]])
        let chart = ReportChart(title: "d2", series: [ReportSeries("eval/distinct_2", "d2")], includeZero: true)
        let html = chart.html([run])
        let f = chart.frame([run], chart.series)
        let x = try #require(attributes("x1", in: html, where: "stroke=\"#0072B2\"/>").compactMap(Double.init).first)
        #expect(abs(x - f.px(2)) <= 0.006 && abs(x - (left + 2.5 / 3 * plotW)) <= 0.006)
        #expect(html.contains("round 2 alarm: mode collapse: eval distinct-2 = 0.01 &lt;x&gt;"))
        // The point at the alarm round is ringed in red.
        let ringed = attributes("cx", in: html, where: "stroke=\"#c00\"").compactMap(Double.init)
        #expect(ringed.count == 1 && abs(ringed[0] - f.px(2)) <= 0.006)
        let page = ReportHTML.page([run], samples: [nil], options: ReportOptions())
        #expect(page.contains("<li>round 2: mode collapse"))
    }

    @Test func timeBarsStackThePhasesOfEachRound() throws {
        let run = reportRun("a", [["time/eval_s": 0.5, "time/commit_s": 0.1],
                                  ["time/sample_s": 1, "time/update_s": 2, "time/eval_s": 0.5, "time/commit_s": 0.5]])
        let html = ReportTimeChart.html([run])
        #expect(ReportTimeChart.phases([run]) == ["time/sample_s", "time/update_s", "time/eval_s", "time/commit_s"])
        // Round 1 totals 4 s: the y axis is 0…4 (1 s ticks); update spans 1…3 s.
        let f = ReportFrame(x: .rounds(0, 1), y: .nice([4], includeZero: true))
        #expect(f.y.lo == 0 && f.y.hi == 4)
        let ys = attributes("y", in: html, where: "data-phase=\"time/update_s\"").compactMap(Double.init)
        let hs = attributes("height", in: html, where: "data-phase=\"time/update_s\"").compactMap(Double.init)
        #expect(ys.count == 1 && hs.count == 1)
        #expect(abs(ys[0] - (top + (4 - 3) / 4 * plotH)) <= 0.006 && abs(hs[0] - 2 / 4 * plotH) <= 0.006)
        let xs = attributes("x", in: html, where: "data-phase=\"time/update_s\"").compactMap(Double.init)
        let slot = plotW / 2
        #expect(abs(xs[0] - (left + 1.5 / 2 * plotW - 0.4 * slot)) <= 0.006)
    }

    @Test func pageIsSelfContainedAndEscapesTheConfig() {
        let run = reportRun("a", [["eval/accuracy": 0.2]], config: "prompts: {train: \"</pre><script>alert(1)</script>\"}\n")
        let page = ReportHTML.page([run], samples: [nil], options: ReportOptions(refreshSeconds: 30))
        #expect(!page.contains("<script") && page.contains("&lt;/pre&gt;&lt;script&gt;alert(1)"))
        #expect(!page.contains("http://") && !page.contains("src="))
        #expect(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"))
    }

    @Test func bestAndWorstSamplesComeFromTheRoundsBuffer() throws {
        try withTemporaryDirectory { dir in
            let round = CampaignStore(root: dir).roundURL(1)
            try FileManager.default.createDirectory(at: round, withIntermediateDirectories: true)
            let w = try BufferWriter(url: round.appendingPathComponent("rollouts.jsonl.zst"), header: BufferHeader(round: 1, policySHA256: "0"))
            let scores: [Float?] = [0.5, 1, 0, 1, 0.2, nil]
            for (i, s) in scores.enumerated() {
                try w.append(SampleRecord(id: i, promptIndex: i / 2, sampleIndex: i % 2, prompt: "p<\(i)>", promptIDs: [1], responseIDs: [2],
                                          response: "r\(i)", logprobs: [-1], label: s.map { Label(labeller: "verifier", score: $0) },
                                          finishReason: "eos", seed: SeedStream(seed: 1, stream: UInt64(i))))
            }
            try w.finish()
            let s = try ReportSamples.read(dir, round: 1, k: 2)
            #expect(s.count == 6 && s.scored == 5)
            #expect(abs(s.meanScore - 2.7 / 5) < 1e-6)
            #expect(s.best.map(\.id) == [1, 3] && s.worst.map(\.id) == [2, 4])
            #expect(s.best[0].response == "r1" && s.best[0].prompt == "p<1>")
            let page = ReportHTML.page([reportRun("a", [[:], [:]])], samples: [.success(s)], options: ReportOptions())
            #expect(page.contains("<pre>p&lt;1&gt;</pre>") && page.contains("Round 1: 6 samples, 5 scored"))
            #expect(throws: CampaignError.self) { try ReportSamples.read(dir, round: 2, k: 2) }
        }
    }

    @Test func staleTemporariesOfAKilledWriteAreRemoved() throws {
        try withTemporaryDirectory { dir in
            // A pid above Linux's pid_max (2^22) belongs to no process; our own pid is live.
            let stale = ".report.html.tmp-4194999-123", live = ".report.html.tmp-\(getpid())-7", other = ".state.json.tmp-4194999-1"
            for n in [stale, live, other] { try Data().write(to: dir.appendingPathComponent(n)) }
            #expect(CampaignReport.removeStaleTemporaries(in: dir) == [stale])
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            #expect(left == [live, other].sorted())
        }
    }
}
