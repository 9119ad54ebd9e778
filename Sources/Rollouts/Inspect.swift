// `rondo inspect`: summary, examples, filtering, export and diff of rollout buffers.

import Foundation
import RondoSupport

/// Options of `rondo inspect`.
public struct InspectOptions: Sendable {
    /// A buffer file, a round directory, or a campaign directory (with `round`).
    public var path: URL
    public var round: Int?
    /// Examples shown at each end of the score ranking.
    public var show = 3
    public var filter: String?
    /// Write the matching sample records as JSON lines instead of a summary.
    public var export = false
    public var json = false
    public var salvage = false
    /// A second buffer to compare with (`--diff A B`).
    public var diffWith: URL?
    /// List the pairwise judge's asked pairs with these outcomes instead of a summary (`--comparisons`;
    /// with `export`, their comparison lines).
    public var comparisons: Set<JudgedPair.Outcome>?
    public init(path: URL) { self.path = path }
}

public enum InspectJob {
    /// Resolves a buffer file from a file, round directory or campaign directory.
    public static func resolve(_ path: URL, round: Int?) throws -> URL {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir) else {
            throw BufferError(.io, "\(path.path): no such file or directory")
        }
        if !isDir.boolValue { return path }
        let direct = path.appendingPathComponent("rollouts.jsonl.zst")
        if round == nil, FileManager.default.fileExists(atPath: direct.path) { return direct }
        let rounds = path.appendingPathComponent("rounds")
        if let round {
            let f = rounds.appendingPathComponent(String(format: "%06d", round)).appendingPathComponent("rollouts.jsonl.zst")
            guard FileManager.default.fileExists(atPath: f.path) else {
                throw BufferError(.io, "\(path.path): round \(round) has no committed buffer (\(f.path))")
            }
            return f
        }
        throw BufferError(.io, "\(path.path): holds no rollouts.jsonl.zst; pass a buffer file, a round directory, or a campaign directory with --round N")
    }

    /// Runs the command; returns the text for standard output and notes for standard error.
    public static func run(_ o: InspectOptions) throws -> (stdout: String, stderr: String) {
        let filter = try o.filter.map(RecordFilter.init)
        let a = try scan(resolve(o.path, round: o.round), o, filter)
        if let other = o.diffWith {
            let b = try scan(resolve(other, round: nil), o, filter)
            return (o.json ? diffJSON(a, b) : diffText(a, b), a.note + b.note)
        }
        if let outcomes = o.comparisons {
            return (o.export ? comparisonLines(a, outcomes) : comparisonList(a, outcomes), a.note)
        }
        if o.export { return (a.exported, a.note) }
        return (o.json ? summaryJSON(a) : summaryText(a, o.show), a.note)
    }

    struct Scan {
        var url: URL
        var header: BufferHeader?
        var summary = BufferSummary()
        var top: [SampleRecord] = []
        var bottom: [SampleRecord] = []
        var exported = ""
        var note = ""
        /// The buffer's comparison lines, and the asked pairs they make (with a filter: those whose
        /// two samples both match it).
        var comparisons: [ComparisonRecord] = []
        var judged: [JudgedPair] = []
    }

    static func scan(_ url: URL, _ o: InspectOptions, _ filter: RecordFilter?) throws -> Scan {
        var s = Scan(url: url)
        var reader = BufferReader(url: url)
        reader.salvage = o.salvage
        var matched = Set<Int>()
        var json = JSONWriter()
        let report = try reader.read { item in
            switch item {
            case .header(let h): s.header = h
            case .sample(let r):
                guard filter?.matches(r) ?? true else { return }
                matched.insert(r.id)
                s.summary.add(r)
                if o.export {
                    json.reset(); json.write(r)
                    s.exported += String(decoding: json.bytes, as: UTF8.self) + "\n"
                }
                if let score = r.label?.score, score.isFinite, o.show > 0 {
                    keep(&s.top, r, o.show) { ($0.label?.score ?? 0) > ($1.label?.score ?? 0) }
                    keep(&s.bottom, r, o.show) { ($0.label?.score ?? 0) < ($1.label?.score ?? 0) }
                }
            case .pair(let p):
                if matched.contains(p.chosen) && matched.contains(p.rejected) { s.summary.add(p) }
            case .comparison(let c): s.comparisons.append(c)
            }
        }
        try s.header?.checkPlacement(of: url)
        try judge(&s, matched: filter == nil ? nil : matched, salvage: o.salvage)
        if let d = report.damage {
            s.note += "salvage: kept \(report.records) records and \(report.pairs) pairs of \(url.path); stopped at: \(d.description)\n"
        }
        return s
    }

    /// Keeps the best `n` records by `better` (stable for ties: earlier records first).
    static func keep(_ list: inout [SampleRecord], _ r: SampleRecord, _ n: Int, _ better: (SampleRecord, SampleRecord) -> Bool) {
        let idx = list.firstIndex { better(r, $0) } ?? list.count
        if idx < n { list.insert(r, at: idx) }
        if list.count > n { list.removeLast() }
    }

    static func fmt(_ v: SummaryValue) -> String {
        switch v {
        case .int(let i): return "\(i)"
        case .num(let d): return d.isNaN ? "–" : String(format: abs(d) >= 100 ? "%.1f" : "%.4g", d)
        }
    }

    static func summaryText(_ s: Scan, _ show: Int) -> String {
        let v = Dictionary(values(s), uniquingKeysWith: { a, _ in a })
        func g(_ k: String) -> String { v[k].map(fmt) ?? "–" }
        var out = "buffer   \(s.url.path)\n"
        if let h = s.header {
            out += "round    \(h.round.map(String.init) ?? "–")   policy \(h.policySHA256.prefix(12))\n"
        }
        out += "records  \(g("records"))   prompts \(g("prompts"))   pairs \(g("pairs"))   scored \(g("scored"))\n"
        if !s.comparisons.isEmpty {
            out += "judge    pairs asked \(g("judge_pairs_asked"))   kept \(g("judge_pairs_kept"))   ties \(g("judge_ties"))   order disagreements \(g("judge_order_disagreements"))   unjudged \(g("judge_pairs_unjudged"))   (--comparisons all lists them)\n"
        }
        out += "score    mean \(g("score_mean"))  std \(g("score_std"))  p0 \(g("score_p0"))  p10 \(g("score_p10"))  p50 \(g("score_p50"))  p90 \(g("score_p90"))  p100 \(g("score_p100"))\n"
        out += "length   mean \(g("length_mean"))  std \(g("length_std"))  min \(g("length_min"))  p50 \(g("length_p50"))  max \(g("length_max")) tokens\n"
        out += "length bias    corr(length, score) \(g("length_score_corr"))   chosen − rejected length \(g("pair_length_gap")) tokens   mean margin \(g("pair_margin_mean"))\n"
        out += "mode collapse  distinct-1 \(g("distinct_1"))   distinct-2 \(g("distinct_2"))   duplicate responses \(g("duplicate_rate"))\n"
        let finishes = s.summary.values().filter { $0.0.hasPrefix("finish_") }
            .map { "\($0.0.dropFirst(7)) \(fmt($0.1))" }.joined(separator: "   ")
        out += "finish   \(finishes.isEmpty ? "–" : finishes)\n"
        if show > 0 && !s.top.isEmpty {
            out += "\ntop \(s.top.count) by score:\n" + s.top.map(example).joined()
            out += "bottom \(s.bottom.count) by score:\n" + s.bottom.map(example).joined()
        }
        return out
    }

    static func example(_ r: SampleRecord) -> String {
        let text = r.response ?? r.responseIDs.map(String.init).joined(separator: " ")
        var shown = String(text.prefix(160)).replacingOccurrences(of: "\n", with: "⏎")
        if text.count > 160 { shown += "…" }
        let score = r.label?.score.map { fmt(.num(Double($0))) } ?? "–"
        return "  #\(r.id)  prompt \(r.promptIndex) sample \(r.sampleIndex)  score \(score)  \(r.responseIDs.count) tokens  \(r.finishReason): \(shown)\n"
    }

    static func jsonObject(_ values: [(String, SummaryValue)]) -> String {
        "{" + values.map { k, v -> String in
            let num: String
            switch v {
            case .int(let i): num = "\(i)"
            case .num(let d): num = d.isNaN ? "null" : jsonNumber(d)
            }
            return "\"\(k)\": \(num)"
        }.joined(separator: ", ") + "}"
    }

    static func summaryJSON(_ s: Scan) -> String {
        var values = values(s)
        values.insert(("round", s.header?.round.map { .int($0) } ?? .num(.nan)), at: 0)
        return jsonObject(values) + "\n"
    }

    static func diffValues(_ a: Scan, _ b: Scan) -> [(String, SummaryValue, SummaryValue)] {
        let bv = Dictionary(values(b), uniquingKeysWith: { x, _ in x })
        var keys = values(a).map(\.0)
        for (k, _) in values(b) where !keys.contains(k) { keys.append(k) }
        let av = Dictionary(values(a), uniquingKeysWith: { x, _ in x })
        return keys.map { ($0, av[$0] ?? .int(0), bv[$0] ?? .int(0)) }
    }

    static func diffText(_ a: Scan, _ b: Scan) -> String {
        var out = "A  \(a.url.path)\nB  \(b.url.path)\n\n"
        out += "key".padding(toLength: 22, withPad: " ", startingAt: 0) + "A".padding(toLength: 14, withPad: " ", startingAt: 0)
            + "B".padding(toLength: 14, withPad: " ", startingAt: 0) + "B − A\n"
        for (k, x, y) in diffValues(a, b) {
            out += k.padding(toLength: 22, withPad: " ", startingAt: 0)
                + fmt(x).padding(toLength: 14, withPad: " ", startingAt: 0)
                + fmt(y).padding(toLength: 14, withPad: " ", startingAt: 0) + fmt(.num(y.double - x.double)) + "\n"
        }
        return out
    }

    static func diffJSON(_ a: Scan, _ b: Scan) -> String {
        let rows = diffValues(a, b)
        return "{\"a\": \(jsonObject(rows.map { ($0.0, $0.1) })), \"b\": \(jsonObject(rows.map { ($0.0, $0.2) })), "
            + "\"delta\": \(jsonObject(rows.map { ($0.0, .num($0.2.double - $0.1.double)) }))}\n"
    }
}

extension BufferHeader {
    /// For a buffer in a campaign's round directory (DIR/rounds/NNNNNN/rollouts.jsonl.zst): refuses a
    /// header of another round, naming both. Its `round` must be NNNNNN and its `policy_sha256` the
    /// parent round's policy (`policy_sha256` in DIR/rounds/NNNNNN−1/round_state.json).
    public func checkPlacement(of url: URL) throws {
        let roundDir = url.deletingLastPathComponent(), rounds = roundDir.deletingLastPathComponent()
        let name = roundDir.lastPathComponent
        guard rounds.lastPathComponent == "rounds", name.count == 6, name.allSatisfy(\.isNumber), let n = Int(name) else { return }
        func policy(_ r: Int) -> String? {
            let f = rounds.appendingPathComponent(String(format: "%06d", r)).appendingPathComponent("round_state.json")
            return (try? JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: f)))?["policy_sha256"]?.string
        }
        let fix = "restore round \(n)'s own buffer (a buffer belongs to the round that sampled it)"
        if let r = round, r != n {
            throw BufferError(.misplaced, "\(url.path): this buffer's header says round \(r), but it is in round \(n)'s directory: it was copied from round \(r); \(fix)")
        }
        guard n >= 1, let parent = policy(n - 1), parent != policySHA256 else { return }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: rounds.path)) ?? []
        let source = names.compactMap { $0.count == 6 ? Int($0) : nil }.sorted().first { policy($0) == policySHA256 }
        let from = source.map { "round \($0 + 1) (sampled from round \($0)'s policy)" } ?? "another campaign or round"
        throw BufferError(.misplaced, "\(url.path): round \(n)'s buffer was sampled from policy \(policySHA256.prefix(12))…, not from round \(n - 1)'s policy \(parent.prefix(12))…: it comes from \(from); \(fix)")
    }
}
