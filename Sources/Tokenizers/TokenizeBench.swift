// `rondo bench tokenize`: encode throughput on one text (by default the oracle fixtures'
// tokenizer_corpus.txt repeated to at least 1 MiB), one `encode` call per repeat on the whole
// text, single-threaded; one warm-up run, then the median of the timed runs. Compare with
// HF tokenizers' `Tokenizer.encode(text, add_special_tokens=False)` on the same text.

import Foundation
import RondoSupport

/// Options of a tokenize benchmark.
public struct TokenizeBenchOptions: Sendable {
    /// tokenizer.json, or a directory containing it.
    public var tokenizer: URL
    /// Text to encode as is; nil: the oracle corpus repeated to ≥ 1 MiB.
    public var input: URL?
    /// Timed runs.
    public var repeats = 5
    public init(tokenizer: URL) { self.tokenizer = tokenizer }
}

/// Encode throughput of a tokenizer on one text.
public enum TokenizeBench {
    /// Size the default corpus is repeated to.
    public static let defaultBytes = 1 << 20

    /// Runs the benchmark and returns the JSON line.
    public static func run(_ o: TokenizeBenchOptions) throws -> String {
        guard o.repeats >= 1 else { throw TokenizerError("--repeat must be at least 1") }
        let tokenizer = try Tokenizer(url: o.tokenizer)
        let (text, source) = try loadText(o.input)
        let bytes = text.utf8.count
        var ids = tokenizer.encode(text)  // warm-up
        var ms: [Double] = []
        for _ in 0..<o.repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            ids = tokenizer.encode(text)
            ms.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let sorted = ms.sorted()
        let median = sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        let fields: [(String, String)] = [
            ("bench", "\"tokenize\""), ("tokenizer", jsonString(o.tokenizer.path)), ("input", jsonString(source)),
            ("bytes", "\(bytes)"), ("tokens", "\(ids.count)"), ("repeat", "\(o.repeats)"),
            ("ms", fmt(median)), ("ms_min_max", "[\(fmt(sorted[0])), \(fmt(sorted[sorted.count - 1]))]"),
            ("bytes_per_s", fmt(Double(bytes) / (median / 1e3), 0)),
            ("tokens_per_s", fmt(Double(ids.count) / (median / 1e3), 0)),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// The text to encode and a description of where it came from.
    static func loadText(_ input: URL?) throws -> (String, String) {
        if let input {
            guard let data = FileManager.default.contents(atPath: input.path) else {
                throw TokenizerError("\(input.path): cannot read")
            }
            return (String(decoding: data, as: UTF8.self), input.path)
        }
        let relative = "Tests/Fixtures/oracle/tokenizer_corpus.txt"
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent()  // Tokenizers
            .deletingLastPathComponent().deletingLastPathComponent()  // Sources, repository
        let candidates = [URL(fileURLWithPath: relative), repo.appendingPathComponent(relative)]
        guard let url = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }),
              let data = FileManager.default.contents(atPath: url.path), !data.isEmpty else {
            throw TokenizerError("\(relative) not found (run from the repository root) — pass --input FILE")
        }
        let corpus = String(decoding: data, as: UTF8.self)
        let copies = (defaultBytes + data.count - 1) / data.count
        return (String(repeating: corpus, count: copies), "\(url.path) ×\(copies)")
    }
}

private func fmt(_ v: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", v) }
