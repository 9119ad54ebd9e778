@testable import Campaign
import Foundation
import Model
import Testing

@Suite struct PhaseProgressTests {
    /// A fake clock: nothing is reported during the quiet start, then status every 2 s and a log
    /// line every 10 s; the snapshot's rate and ETA follow the items done.
    @Test func reportsAfterTheQuietStartAtTheirIntervals() {
        var t = 100.0
        var reports: [(ProgressSnapshot, Bool)] = []
        let p = PhaseProgress(total: 100, unit: "samples", now: { t }) { reports.append(($0, $1)) }
        for _ in 0..<4 { t += 1; p.advance() }  // 4 s: quiet
        #expect(reports.isEmpty)
        t += 1; p.advance()  // 5 s: first report, logged
        #expect(reports.count == 1 && reports[0].1)
        t += 1; p.advance()  // 6 s: status not yet due (2 s)
        #expect(reports.count == 1)
        t += 1; p.advance()  // 7 s: status, no log
        #expect(reports.count == 2 && !reports[1].1)
        for _ in 0..<8 { t += 1; p.advance() }  // to 15 s: a log line at 15 s
        #expect(reports.filter(\.1).count == 2)
        let last = reports.last!.0
        #expect(last.done == 15 && last.total == 100 && last.elapsed == 15)
        #expect(last.rate == 1 && last.eta == 85)
        #expect(last.line == "15/100 samples (15%), 1 samples/s, 1m25s left")
    }

    /// The update learns its total (optimizer steps) only once it runs: `set` replaces the count and
    /// the total, and reports like `advance`.
    @Test func setTakesTheCountAndATotalKnownLate() {
        var t = 0.0
        var reports: [ProgressSnapshot] = []
        let p = PhaseProgress(total: 0, unit: "steps", quiet: 0, now: { t }) { s, _ in reports.append(s) }
        t = 2; p.set(done: 0, total: 12)
        t = 4; p.set(done: 4, total: 12)
        #expect(reports.map(\.done) == [0, 4] && reports.allSatisfy { $0.total == 12 })
        #expect(reports.last!.line == "4/12 steps (33%), 1 steps/s, 8s left")
    }

    @Test func snapshotRoundTripsThroughStatusJSON() {
        let s = ProgressSnapshot(done: 3, total: 7, unit: "steps", elapsed: 12.5)
        #expect(ProgressSnapshot(s.json) == s)
        #expect(ProgressSnapshot(.null) == nil)
        #expect(ProgressSnapshot(done: 0, total: 7, unit: "steps", elapsed: 0).eta == nil)
        #expect(ProgressSnapshot.duration(3700) == "1h01m" && ProgressSnapshot.duration(9) == "9s")
    }
}
