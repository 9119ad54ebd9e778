// Inline SVG charts for `rondo report`: axes with round ticks on x and "nice" ticks on y, line
// paths through per-round metric values (a gap where a round lacks the value), alarm marks, and
// stacked bars for the per-round time split. Coordinates are printed with two decimals.

import Foundation

/// A linear axis: its domain and the tick values drawn on it.
public struct ReportAxis: Sendable, Equatable {
    public var lo: Double
    public var hi: Double
    public var ticks: [Double]

    /// Rounds first…last, padded by half a round each side (so bars at the ends fit); integer ticks.
    public static func rounds(_ first: Int, _ last: Int) -> ReportAxis {
        let span = max(0, last - first)
        let step = span <= 10 ? 1 : niceStep(Double(span) / 8).rounded(.up)
        let ticks = stride(from: Double(first), through: Double(last), by: max(1, step)).map { $0 }
        return ReportAxis(lo: Double(first) - 0.5, hi: Double(last) + 0.5, ticks: ticks)
    }

    /// A domain covering `values` whose ends are multiples of a 1-2-5 step; about `count` intervals.
    public static func nice(_ values: [Double], count: Int = 5, includeZero: Bool = false) -> ReportAxis {
        var lo = values.min() ?? 0, hi = values.max() ?? 1
        if includeZero { lo = min(lo, 0); hi = max(hi, 0) }
        if hi - lo < 1e-12 * max(1, abs(hi)) {
            let pad = abs(hi) > 0 ? abs(hi) * 0.1 : 1
            lo -= pad; hi += pad
        }
        let step = niceStep((hi - lo) / Double(max(1, count)))
        // A hair of slack so 0.5 / 0.1 = 5.000…1 does not add a tick.
        let a = (lo / step + 1e-9).rounded(.down) * step, b = (hi / step - 1e-9).rounded(.up) * step
        let n = Int(((b - a) / step).rounded())
        return ReportAxis(lo: a, hi: b, ticks: (0...n).map { a + Double($0) * step })
    }

    /// The 1, 2 or 5 × 10^k at or above `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let p = pow(10, (log10(raw)).rounded(.down))
        for m in [1.0, 2, 5, 10] where m * p >= raw * (1 - 1e-9) { return m * p }
        return 10 * p
    }
}

/// Where a chart's plot area sits in its SVG, and how values map into it.
public struct ReportFrame: Sendable, Equatable {
    public var width = 460.0, height = 230.0
    public var left = 58.0, right = 12.0, top = 12.0, bottom = 34.0
    public var x: ReportAxis
    public var y: ReportAxis

    public init(x: ReportAxis, y: ReportAxis) { self.x = x; self.y = y }

    public var plotWidth: Double { width - left - right }
    public var plotHeight: Double { height - top - bottom }
    /// The horizontal pixel of round (or x value) `v`.
    public func px(_ v: Double) -> Double { left + (v - x.lo) / (x.hi - x.lo) * plotWidth }
    /// The vertical pixel of value `v` (SVG's y grows downwards).
    public func py(_ v: Double) -> Double { top + (y.hi - v) / (y.hi - y.lo) * plotHeight }
}

/// Two decimals, "-0.00" printed as "0.00".
func coord(_ v: Double) -> String {
    let s = String(format: "%.2f", v)
    return s == "-0.00" ? "0.00" : s
}

/// A tick label: integers as such, otherwise up to 4 significant digits.
func tickLabel(_ v: Double) -> String {
    if abs(v) < 1e-12 { return "0" }
    if v == v.rounded() && abs(v) < 1e7 { return String(Int(v)) }
    return String(format: "%.4g", v)
}

enum ReportSVG {
    /// The path through the points: "M" starts each run of consecutive values, "L" continues it; a
    /// missing value ends the run (a lone point draws nothing here: `markers` shows it).
    static func linePath(_ points: [(round: Int, value: Double?)], _ f: ReportFrame) -> String {
        var d: [String] = []
        var open = false
        for p in points {
            guard let v = p.value else { open = false; continue }
            d.append("\(open ? "L" : "M")\(coord(f.px(Double(p.round)))) \(coord(f.py(v)))")
            open = true
        }
        return d.joined(separator: " ")
    }

    /// Axes, grid lines and tick labels.
    static func axes(_ f: ReportFrame, xLabel: String) -> String {
        var s = ""
        for t in f.y.ticks {
            let y = coord(f.py(t))
            s += "<line class=\"grid\" x1=\"\(coord(f.left))\" y1=\"\(y)\" x2=\"\(coord(f.width - f.right))\" y2=\"\(y)\"/>"
            s += "<text class=\"tick\" x=\"\(coord(f.left - 6))\" y=\"\(y)\" text-anchor=\"end\" dominant-baseline=\"middle\">\(tickLabel(t))</text>"
        }
        let base = coord(f.height - f.bottom)
        for t in f.x.ticks {
            let x = coord(f.px(t))
            s += "<line class=\"axis\" x1=\"\(x)\" y1=\"\(base)\" x2=\"\(x)\" y2=\"\(coord(f.height - f.bottom + 4))\"/>"
            s += "<text class=\"tick\" x=\"\(x)\" y=\"\(coord(f.height - f.bottom + 15))\" text-anchor=\"middle\">\(tickLabel(t))</text>"
        }
        s += "<line class=\"axis\" x1=\"\(coord(f.left))\" y1=\"\(coord(f.top))\" x2=\"\(coord(f.left))\" y2=\"\(base)\"/>"
        s += "<line class=\"axis\" x1=\"\(coord(f.left))\" y1=\"\(base)\" x2=\"\(coord(f.width - f.right))\" y2=\"\(base)\"/>"
        s += "<text class=\"label\" x=\"\(coord(f.left + f.plotWidth / 2))\" y=\"\(coord(f.height - 4))\" text-anchor=\"middle\">\(escapeHTML(xLabel))</text>"
        return s
    }

    /// A vertical dashed line at an alarm's round with a marker on top; the alarm texts as a tooltip.
    static func alarmMark(round: Int, messages: [String], color: String, _ f: ReportFrame) -> String {
        let x = coord(f.px(Double(round))), top = f.top
        let tip = escapeHTML("round \(round) alarm: " + messages.joined(separator: "; "))
        return "<g class=\"alarm\"><title>\(tip)</title>"
            + "<line x1=\"\(x)\" y1=\"\(coord(top))\" x2=\"\(x)\" y2=\"\(coord(f.height - f.bottom))\" stroke=\"\(color)\"/>"
            + "<path d=\"M\(x) \(coord(top + 7)) l-5 -7 h10 z\" fill=\"#c00\"/></g>"
    }

    /// A dot for each drawn point (so single points show), ringed in red at alarm rounds.
    static func markers(_ points: [(round: Int, value: Double?)], alarms: Set<Int>, color: String, label: String,
                        _ f: ReportFrame) -> String {
        points.compactMap { p -> String? in
            guard let v = p.value else { return nil }
            let alarm = alarms.contains(p.round)
            let tip = escapeHTML("\(label), round \(p.round): \(fmtValue(v))\(alarm ? " (alarm)" : "")")
            return "<circle cx=\"\(coord(f.px(Double(p.round))))\" cy=\"\(coord(f.py(v)))\" r=\"\(alarm ? 4.5 : 2.5)\" "
                + "fill=\"\(color)\"\(alarm ? " stroke=\"#c00\" stroke-width=\"2\"" : "")><title>\(tip)</title></circle>"
        }.joined()
    }
}

/// A value for tooltips and tables: 4 significant digits.
func fmtValue(_ v: Double) -> String { v.isFinite ? String(format: "%.4g", v) : "–" }

/// Text made safe inside HTML elements and attribute values.
public func escapeHTML(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        case _ where c.value < 0x20 && c != "\n" && c != "\t" && c != "\r": out += "\u{FFFD}"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}
