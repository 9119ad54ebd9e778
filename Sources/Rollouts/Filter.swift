// The `--where` filter of `rondo inspect`: conditions joined by `and`,
//   FIELD OP VALUE   with OP one of < <= > >= == !=
// Fields: score, length (response tokens), prompt_index, sample_index, logprob_sum, logprob_mean
// (numbers) and finish_reason, labeller (words; compare with == or !=).
// Example: `score < 0 and length > 20`, `finish_reason == length`. A record without a score never
// matches a condition on score.

import Foundation

public struct RecordFilter: Sendable {
    enum Op: String, CaseIterable { case le = "<=", ge = ">=", eq = "==", ne = "!=", lt = "<", gt = ">" }
    struct Condition {
        let field: String
        let op: Op
        let number: Double?
        let word: String
    }
    static let numericFields = ["score", "length", "prompt_index", "sample_index", "logprob_sum", "logprob_mean"]
    static let wordFields = ["finish_reason", "labeller"]
    let conditions: [Condition]

    /// Parses an expression; errors say what was wrong and list the fields.
    public init(_ text: String) throws {
        var conds: [Condition] = []
        let parts = text.components(separatedBy: " and ").map { $0.trimmingCharacters(in: .whitespaces) }
        for part in parts {
            guard let op = Op.allCases.first(where: { part.contains($0.rawValue) }),
                  let r = part.range(of: op.rawValue) else {
                throw BufferError(.record, "--where '\(text)': '\(part)' has no operator; use FIELD OP VALUE with OP one of < <= > >= == !=")
            }
            let field = part[..<r.lowerBound].trimmingCharacters(in: .whitespaces)
            var value = part[r.upperBound...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.first == "\"" || value.first == "'", value.last == value.first {
                value = String(value.dropFirst().dropLast())
            }
            let fields = Self.numericFields + Self.wordFields
            guard fields.contains(field) else {
                throw BufferError(.record, "--where '\(text)': unknown field '\(field)'; fields are \(fields.joined(separator: ", "))")
            }
            if Self.numericFields.contains(field) {
                guard let n = Double(value), n.isFinite else {
                    throw BufferError(.record, "--where '\(text)': '\(value)' is not a finite number (field \(field)); nothing compares with NaN or infinity")
                }
                conds.append(Condition(field: field, op: op, number: n, word: value))
            } else {
                guard op == .eq || op == .ne else {
                    throw BufferError(.record, "--where '\(text)': \(field) compares with == or != only")
                }
                conds.append(Condition(field: field, op: op, number: nil, word: value))
            }
        }
        conditions = conds
    }

    public func matches(_ r: SampleRecord) -> Bool {
        for c in conditions {
            if let n = c.number {
                let v: Double?
                switch c.field {
                case "score": v = r.label?.score.map(Double.init)
                case "length": v = Double(r.responseIDs.count)
                case "prompt_index": v = Double(r.promptIndex)
                case "sample_index": v = Double(r.sampleIndex)
                case "logprob_sum": v = r.logprobs.reduce(0.0) { $0 + Double($1) }
                default: v = r.logprobs.isEmpty ? nil : r.logprobs.reduce(0.0) { $0 + Double($1) } / Double(r.logprobs.count)
                }
                guard let v else { return false }
                let ok: Bool
                switch c.op {
                case .lt: ok = v < n
                case .le: ok = v <= n
                case .gt: ok = v > n
                case .ge: ok = v >= n
                case .eq: ok = v == n
                case .ne: ok = v != n
                }
                if !ok { return false }
            } else {
                let v = c.field == "finish_reason" ? r.finishReason : (r.label?.labeller ?? "")
                if (v == c.word) != (c.op == .eq) { return false }
            }
        }
        return true
    }
}
