// Summary statistics of a rollout buffer, with the DPO failure-mode signals:
// length bias (Pearson correlation of response length and score; chosen − rejected length gap),
// mode collapse (distinct-1/2 over response tokens; duplicate responses per prompt).

import Foundation

/// Streaming accumulator; memory grows only with per-record scalars and distinct n-grams.
public struct BufferSummary: Sendable {
    public private(set) var records = 0
    public private(set) var pairs = 0
    private var promptSet = Set<Int>()
    private var scores: [Float] = []
    private var lengths: [Float] = []
    private var scoredLengths: [Float] = []
    private var finish: [String: Int] = [:]
    private var unigrams = Set<Int32>()
    private var bigrams = Set<Int64>()
    private var tokenCount = 0
    private var bigramCount = 0
    private var seenResponses: [Int: Set<Int>] = [:]
    private var duplicates = 0
    private var lengthByID: [Int: Int] = [:]
    private var gapSum = 0.0
    private var marginSum = 0.0

    public init() {}

    public mutating func add(_ r: SampleRecord) {
        records += 1
        promptSet.insert(r.promptIndex)
        let n = r.responseIDs.count
        lengths.append(Float(n))
        lengthByID[r.id] = n
        if let s = r.label?.score, s.isFinite {
            scores.append(s)
            scoredLengths.append(Float(n))
        }
        finish[r.finishReason, default: 0] += 1
        tokenCount += n
        for (i, t) in r.responseIDs.enumerated() {
            unigrams.insert(t)
            if i > 0 {
                bigrams.insert(Int64(r.responseIDs[i - 1]) << 32 | Int64(UInt32(bitPattern: t)))
                bigramCount += 1
            }
        }
        var h = Hasher()
        h.combine(r.responseIDs)
        if !seenResponses[r.promptIndex, default: []].insert(h.finalize()).inserted { duplicates += 1 }
    }

    public mutating func add(_ p: PairRecord) {
        pairs += 1
        gapSum += Double((lengthByID[p.chosen] ?? 0) - (lengthByID[p.rejected] ?? 0))
        marginSum += Double(p.margin)
    }

    /// The summary as named values (keys are stable; `--json` prints them).
    public func values() -> [(String, SummaryValue)] {
        var out: [(String, SummaryValue)] = [
            ("records", .int(records)), ("prompts", .int(promptSet.count)), ("pairs", .int(pairs)),
            ("scored", .int(scores.count)),
        ]
        let s = Stats(scores), l = Stats(lengths)
        out += [("score_mean", .num(s.mean)), ("score_std", .num(s.std))]
        for (q, v) in zip([0, 10, 25, 50, 75, 90, 100], s.quantiles) { out.append(("score_p\(q)", .num(v))) }
        out += [("length_mean", .num(l.mean)), ("length_std", .num(l.std)), ("length_min", .num(l.quantiles[0])),
                ("length_p50", .num(l.quantiles[3])), ("length_max", .num(l.quantiles[6])),
                ("length_score_corr", .num(pearson(scoredLengths, scores))),
                ("pair_length_gap", .num(pairs > 0 ? gapSum / Double(pairs) : .nan)),
                ("pair_margin_mean", .num(pairs > 0 ? marginSum / Double(pairs) : .nan)),
                ("distinct_1", .num(tokenCount > 0 ? Double(unigrams.count) / Double(tokenCount) : .nan)),
                ("distinct_2", .num(bigramCount > 0 ? Double(bigrams.count) / Double(bigramCount) : .nan)),
                ("duplicate_rate", .num(records > 0 ? Double(duplicates) / Double(records) : .nan))]
        for (k, v) in finish.sorted(by: { $0.key < $1.key }) { out.append(("finish_\(k)", .int(v))) }
        return out
    }
}

/// A summary value: a count or a real number (NaN when undefined).
public enum SummaryValue: Sendable, Equatable {
    case int(Int)
    case num(Double)
    public var double: Double { switch self { case .int(let i): return Double(i); case .num(let d): return d } }
}

struct Stats {
    var mean = Double.nan, std = Double.nan
    var quantiles = [Double](repeating: .nan, count: 7)
    init(_ xs: [Float]) {
        guard !xs.isEmpty else { return }
        let d = xs.map(Double.init)
        mean = d.reduce(0, +) / Double(d.count)
        std = (d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(d.count)).squareRoot()
        let sorted = d.sorted()
        quantiles = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1].map { q in
            // Linear interpolation between closest ranks (numpy's default).
            let pos = q * Double(sorted.count - 1)
            let lo = Int(pos.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
            return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
        }
    }
}

/// Pearson correlation (NaN if either side is constant or there are < 2 points).
public func pearson(_ a: [Float], _ b: [Float]) -> Double {
    guard a.count == b.count, a.count >= 2 else { return .nan }
    let n = Double(a.count)
    let ma = a.reduce(0.0) { $0 + Double($1) } / n, mb = b.reduce(0.0) { $0 + Double($1) } / n
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for (x, y) in zip(a, b) {
        let dx = Double(x) - ma, dy = Double(y) - mb
        sab += dx * dy; saa += dx * dx; sbb += dy * dy
    }
    return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : .nan
}
