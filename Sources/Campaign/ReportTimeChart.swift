// The report's time-split chart: per round, one bar stacked from the round's phase times (the
// metrics' time/*_s keys, in the daemon's phase order); compared runs stand side by side.

import Foundation

enum ReportTimeChart {
    /// The phase keys (time/…) the runs record, in the daemon's phase order.
    static func phases(_ runs: [ReportRun]) -> [String] {
        Set(runs.flatMap { $0.rows.flatMap { $0.keys.filter { $0.hasPrefix("time/") } } }).sorted(by: phaseOrder)
    }

    /// The daemon's phase order; unknown phases after the known ones, by name.
    static func phaseOrder(_ a: String, _ b: String) -> Bool {
        let order = ["sample", "rm_refresh", "label", "reference", "values", "buffer", "update", "eval", "commit"]
        func rank(_ k: String) -> Int {
            let name = k.dropFirst("time/".count).replacingOccurrences(of: "_s", with: "")
            return order.firstIndex(of: name) ?? order.count
        }
        return (rank(a), a) < (rank(b), b)
    }

    /// One bar segment: its phase, run, round and extent in seconds.
    struct Segment: Equatable {
        var phase: String
        var run: Int
        var round: Int
        var from: Double
        var to: Double
    }

    static func segments(_ runs: [ReportRun], _ phases: [String]) -> [Segment] {
        var out: [Segment] = []
        for (ri, run) in runs.enumerated() {
            for row in run.rows {
                guard let r = row["round"]?.int else { continue }
                var at = 0.0
                for p in phases {
                    guard let s = row[p]?.double, s.isFinite, s > 0 else { continue }
                    out.append(Segment(phase: p, run: ri, round: r, from: at, to: at + s))
                    at += s
                }
            }
        }
        return out
    }

    static func html(_ runs: [ReportRun]) -> String {
        let phases = phases(runs)
        var out = "<section class=\"chart\"><h3>Time per round, by phase (seconds)</h3>"
        let segs = segments(runs, phases)
        guard !segs.isEmpty else { return out + "<p class=\"note\">Not drawn: no round records time/*_s phase times.</p></section>" }
        let rounds = segs.map(\.round)
        let f = ReportFrame(x: .rounds(rounds.min()!, rounds.max()!), y: .nice(segs.map(\.to), includeZero: true))
        let group = 0.8 * (f.px(1) - f.px(0)), width = group / Double(runs.count)
        var svg = "<svg viewBox=\"0 0 \(coord(f.width)) \(coord(f.height))\" role=\"img\" aria-label=\"time per round by phase\">"
        svg += ReportSVG.axes(f, xLabel: runs.count > 1 ? "round (bars left to right: \(runs.map(\.name).joined(separator: ", ")))" : "round")
        for s in segs {
            let x = f.px(Double(s.round)) - group / 2 + Double(s.run) * width
            let color = palette[(phases.firstIndex(of: s.phase) ?? 0) % palette.count]
            let tip = "\(runs[s.run].name), round \(s.round): \(phaseName(s.phase)) \(fmtValue(s.to - s.from)) s"
            svg += "<rect class=\"phase\" data-phase=\"\(escapeHTML(s.phase))\" x=\"\(coord(x))\" y=\"\(coord(f.py(s.to)))\" "
                + "width=\"\(coord(width))\" height=\"\(coord(f.py(s.from) - f.py(s.to)))\" fill=\"\(color)\">"
                + "<title>\(escapeHTML(tip))</title></rect>"
        }
        let legend = phases.enumerated().map { i, p in
            "<span class=\"key\"><svg width=\"12\" height=\"10\" aria-hidden=\"true\"><rect width=\"12\" height=\"10\" "
                + "fill=\"\(palette[i % palette.count])\"/></svg>\(escapeHTML(phaseName(p)))</span>"
        }
        return out + svg + "</svg><div class=\"legend\">" + legend.joined() + "</div></section>"
    }

    /// "time/sample_s" → "sample".
    static func phaseName(_ key: String) -> String {
        var n = String(key.dropFirst("time/".count))
        if n.hasSuffix("_s") { n.removeLast(2) }
        return n
    }
}
