// Progress inside a long phase (sampling, labelling, reference log-probs, the update, evaluation):
// items done of the total, the rate and the time left. A phase that has run longer than `quiet`
// logs one line at most every `logEvery` seconds and keeps its progress in status.json (at most
// every `statusEvery` seconds), so `rondo status` shows the running phase's progress and ETA. Logs
// stay line-oriented: no carriage returns, whatever the terminal.

import Foundation
import Model

/// What a running phase has done so far, as status.json keeps it.
public struct ProgressSnapshot: Equatable, Sendable {
    public var done: Int
    public var total: Int
    /// What is counted: "samples", "prompts", "rows", "steps".
    public var unit: String
    public var elapsed: Double

    /// Items per second so far (0 before the first item).
    public var rate: Double { elapsed > 0 ? Double(done) / elapsed : 0 }
    /// Seconds left at the rate so far; nil before the first item.
    public var eta: Double? { done > 0 && rate > 0 ? Double(max(0, total - done)) / rate : nil }

    /// The JSON object status.json holds under "progress".
    var json: JSONValue {
        .object(["done": .number(Double(done)), "total": .number(Double(total)), "unit": .string(unit),
                 "elapsed_s": .number(elapsed), "rate_per_s": .number(rate), "eta_s": eta.map { .number($0) } ?? .null])
    }

    init(done: Int, total: Int, unit: String, elapsed: Double) {
        self.done = done; self.total = total; self.unit = unit; self.elapsed = elapsed
    }

    /// Reads the object `json` wrote; nil for anything else.
    init?(_ v: JSONValue?) {
        guard let done = v?["done"]?.int, let total = v?["total"]?.int, let unit = v?["unit"]?.string,
              let elapsed = v?["elapsed_s"]?.double else { return nil }
        self.init(done: done, total: total, unit: unit, elapsed: elapsed)
    }

    /// "1,234/4,096 samples (30%), 45.2 samples/s, 1m03s left".
    public var line: String {
        let pct = total > 0 ? " (\(100 * done / total)%)" : ""
        let left = eta.map { ", \(Self.duration($0)) left" } ?? ""
        return "\(done)/\(total) \(unit)\(pct), \(String(format: "%.3g", rate)) \(unit)/s\(left)"
    }

    /// 75 → "1m15s", 3700 → "1h01m", 9 → "9s".
    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        if t >= 3600 { return String(format: "%dh%02dm", t / 3600, t % 3600 / 60) }
        if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
        return "\(t)s"
    }
}

/// Counts a phase's items and reports them (see the file header). Not thread-safe: call `advance`
/// from the thread that runs the phase.
final class PhaseProgress {
    private let report: (ProgressSnapshot, _ log: Bool) -> Void
    private let now: () -> Double
    private let start: Double
    private let quiet: Double, logEvery: Double, statusEvery: Double
    private var lastLog: Double, lastStatus: Double
    private(set) var snapshot: ProgressSnapshot

    /// `report(snapshot, log)` writes status.json, and a log line when `log` is true.
    init(total: Int, unit: String, quiet: Double = 5, logEvery: Double = 10, statusEvery: Double = 2,
         now: @escaping () -> Double = { Date().timeIntervalSinceReferenceDate },
         report: @escaping (ProgressSnapshot, Bool) -> Void) {
        self.now = now
        self.report = report
        self.quiet = quiet; self.logEvery = logEvery; self.statusEvery = statusEvery
        start = now()
        lastLog = start + quiet - logEvery  // the first line comes when the phase passes `quiet`
        lastStatus = start
        snapshot = ProgressSnapshot(done: 0, total: total, unit: unit, elapsed: 0)
    }

    /// Sets the items done and the total (a phase that learns its total only once it runs, e.g. the
    /// update's optimizer steps); reports when a report is due.
    func set(done: Int, total: Int) {
        snapshot.total = total
        advance(by: done - snapshot.done)
    }

    /// Adds `n` done items; reports when a report is due.
    func advance(by n: Int = 1) {
        snapshot.done += n
        let t = now()
        snapshot.elapsed = t - start
        guard snapshot.elapsed >= quiet else { return }
        let log = t - lastLog >= logEvery
        if log || t - lastStatus >= statusEvery {
            report(snapshot, log)
            lastStatus = t
            if log { lastLog = t }
        }
    }
}

extension CampaignStore {
    /// status.json with the running phase's progress.
    func writeStatus(round: Int, phase: String, progress: ProgressSnapshot) {
        writeStatus(round: round, phase: phase, extra: ["progress": progress.json])
    }
}
