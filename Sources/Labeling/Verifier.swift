// The built-in verifier: scores 1 when a response's answer matches the prompt's `answer`, else 0.
//
// The response's answer is its first line (text up to the first newline), trimmed.
//  - Numeric answers (the expected answer parses as a number): the first number in that line —
//    an optional minus sign, digits with optional thousands commas (1,000), an optional fraction — must
//    equal it numerically (|a − b| ≤ 1e-9·max(1, |b|)). "47", "= 47.", "the answer is 47" all match 47.
//  - Otherwise: exact match after normalisation — Unicode NFKC, lowercase, whitespace runs
//    collapsed to one space, leading/trailing whitespace and trailing . ! ? removed.

import Foundation

public final class Verifier: Labeller {
    public let id = "verifier"
    public init() {}

    public func score(_ r: LabelRequest) throws -> [Float] {
        guard let answer = r.answer else {
            throw LabelError("verifier: the prompt \"\(r.prompt.prefix(60))\" has no \"answer\"; every prompt line needs one for the verifier labeller")
        }
        return r.responses.map { Self.matches($0, answer) ? 1 : 0 }
    }

    /// Whether `response` answers `expected` (rules above).
    public static func matches(_ response: String, _ expected: String) -> Bool {
        let line = String(response.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        if let want = number(in: expected.trimmingCharacters(in: .whitespaces), whole: true) {
            guard let got = number(in: line, whole: false) else { return false }
            return abs(got - want) <= 1e-9 * max(1, abs(want))
        }
        return normalise(line) == normalise(expected)
    }

    public static func normalise(_ s: String) -> String {
        var t = s.precomposedStringWithCompatibilityMapping.lowercased()
        t = t.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        while let last = t.last, ".!?".contains(last) { t.removeLast() }
        return t.trimmingCharacters(in: .whitespaces)
    }

    /// A thousands separator: exactly three digits follow the comma.
    static func groupOfThree(_ chars: [Character], after j: Int) -> Bool {
        for k in 1...3 { guard j + k < chars.count, chars[j + k].isASCII, chars[j + k].isNumber else { return false } }
        return j + 4 >= chars.count || !(chars[j + 4].isASCII && chars[j + 4].isNumber)
    }

    /// The first number in `s` (or `s` itself as a number when `whole`).
    static func number(in s: String, whole: Bool) -> Double? {
        let chars = Array(s)
        var i = 0
        while i < chars.count {
            let startsNumber = chars[i].isASCII && chars[i].isNumber
                || (chars[i] == "-" && i + 1 < chars.count && chars[i + 1].isASCII && chars[i + 1].isNumber)
            if startsNumber {
                var j = i + (chars[i] == "-" ? 1 : 0)
                var text = chars[i] == "-" ? "-" : ""
                var sawDot = false
                while j < chars.count {
                    let c = chars[j]
                    if c.isASCII && c.isNumber { text.append(c) }
                    else if c == ",", !sawDot, groupOfThree(chars, after: j) {}
                    else if c == ".", !sawDot, j + 1 < chars.count, chars[j + 1].isASCII, chars[j + 1].isNumber { sawDot = true; text.append(c) }
                    else { break }
                    j += 1
                }
                if whole && (i != 0 || j != chars.count) { return nil }
                return Double(text)
            }
            if whole { return nil }
            i += 1
        }
        return nil
    }
}
