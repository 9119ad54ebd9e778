// The pre-tokenizer pipeline of a byte-level BPE tokenizer.json, as HF tokenizers runs it
// (`pre_tokenizers/{byte_level,split,digits,sequence}.rs`): each step splits every current piece
// into smaller pieces (empty pieces are dropped); ByteLevel comes last — it optionally prepends a
// space to each piece that does not start with one, optionally splits with the GPT-2 pattern, and
// maps bytes to its alphabet (done implicitly here: BPE runs on raw UTF-8 bytes).
//
// Supported steps: Split (Regex or String pattern, behavior Isolated, invert false),
// Digits (individual_digits true/false), ByteLevel (last). Known Split regexes run on the
// hand-written scanners in Scanners.swift; any other regex runs on Swift Regex over Unicode scalars.

import Foundation

/// Splits a byte range of valid UTF-8 into pieces that tile it (Isolated behaviour).
enum Splitter {
    /// GPT-2 or Llama-3 pattern, hand-written.
    case scanner(PatternScanner)
    /// HF `Digits`: runs of \p{N} (`char::is_numeric`) become pieces, one per digit when
    /// `individual`, as do the runs between them.
    case digits(individual: Bool)
    /// Split with a `String` pattern: every occurrence of the literal is a piece.
    case literal([UInt8])
    /// Split with another regex.
    case regex(RegexSplitter)

    func split(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        switch self {
        case .scanner(let s):
            s.split(p, range, body)
        case .digits(let individual):
            let table = CharClass.bmp
            var i = range.lowerBound
            var pieceStart = i
            var inDigits = false
            while i < range.upperBound {
                let (v, n) = scalarAt(p, i)
                let isDigit = CharClass.of(v, table) & CharClass.number != 0
                if i > pieceStart && (isDigit != inDigits || (isDigit && individual)) {
                    body(pieceStart..<i)
                    pieceStart = i
                }
                inDigits = isDigit
                i += n
            }
            if pieceStart < range.upperBound { body(pieceStart..<range.upperBound) }
        case .literal(let needle):
            var i = range.lowerBound
            var gapStart = i
            while i + needle.count <= range.upperBound {
                if memcmp(p + i, needle, needle.count) == 0 {
                    if gapStart < i { body(gapStart..<i) }
                    body(i..<(i + needle.count))
                    i += needle.count
                    gapStart = i
                } else {
                    i += 1
                }
            }
            if gapStart < range.upperBound { body(gapStart..<range.upperBound) }
        case .regex(let r):
            r.split(p, range, body)
        }
    }

    /// Appends the end offset of each piece of `p[range]` to `ends` (the pieces tile the range).
    func appendEnds(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, _ ends: inout [Int]) {
        if case .scanner(let s) = self {
            s.appendEnds(p, range, &ends)
        } else {
            split(p, range) { ends.append($0.upperBound) }
        }
    }
}

/// A Split regex that is not one of the hand-written patterns: Swift Regex with Unicode-scalar
/// semantics (Oniguruma's, which HF uses, is not available; patterns Swift cannot compile are refused).
final class RegexSplitter: @unchecked Sendable {
    let pattern: String
    private let regex: Regex<AnyRegexOutput>

    init(pattern: String) throws {
        self.pattern = pattern
        do {
            regex = try Regex(pattern).matchingSemantics(.unicodeScalar)
        } catch {
            throw TokenizerError("the Split regex \(pattern.debugDescription) does not compile as a Swift Regex (\(error)); only the GPT-2 and Llama-3 patterns are built in")
        }
    }

    func split(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        let text = String(decoding: UnsafeBufferPointer(start: p + range.lowerBound, count: range.count), as: UTF8.self)
        let utf8 = text.utf8
        var gapStart = 0
        for m in text.matches(of: regex) {
            let lo = utf8.distance(from: utf8.startIndex, to: m.range.lowerBound)
            let hi = utf8.distance(from: utf8.startIndex, to: m.range.upperBound)
            if lo == hi { continue }
            if gapStart < lo { body((range.lowerBound + gapStart)..<(range.lowerBound + lo)) }
            body((range.lowerBound + lo)..<(range.lowerBound + hi))
            gapStart = hi
        }
        if range.lowerBound + gapStart < range.upperBound { body((range.lowerBound + gapStart)..<range.upperBound) }
    }
}

/// The whole pre-tokenizer: splitting steps, with ByteLevel's prefix space as a step of its own.
struct PreTokenizer {
    enum Step {
        case split(Splitter)
        /// ByteLevel `add_prefix_space`: prepend " " to a piece that does not start with it.
        case prefixSpace
    }

    let steps: [Step]
    /// No step adds a prefix space: every piece is a range of the input buffer (`appendEnds` works).
    let isFlat: Bool

    init(steps: [Step]) {
        self.steps = steps
        isFlat = steps.allSatisfy { if case .split = $0 { true } else { false } }
    }

    /// For a flat pipeline: appends the end offset of each final piece of `p[range]` to `ends`;
    /// the pieces tile the range, so the first starts at `range.lowerBound`.
    func appendEnds(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, _ ends: inout [Int]) {
        appendEnds(p, range, step: 0, &ends)
    }

    private func appendEnds(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, step: Int, _ ends: inout [Int]) {
        guard !range.isEmpty else { return }
        guard step < steps.count else { return ends.append(range.upperBound) }
        guard case .split(let splitter) = steps[step] else { fatalError("appendEnds needs a flat pipeline") }
        if step + 1 == steps.count {
            splitter.appendEnds(p, range, &ends)
        } else {
            splitter.split(p, range) { appendEnds(p, $0, step: step + 1, &ends) }
        }
    }

    /// Calls `emit` with each final piece of `buf[range]`, in order. The piece is a range of the
    /// buffer passed along with it (a temporary copy when a prefix space was added).
    func run(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
             _ emit: (UnsafeBufferPointer<UInt8>, Range<Int>) -> Void) {
        run(buf, range, step: 0, emit)
    }

    private func run(_ buf: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, step: Int,
                     _ emit: (UnsafeBufferPointer<UInt8>, Range<Int>) -> Void) {
        guard !range.isEmpty, let base = buf.baseAddress else { return }
        guard step < steps.count else { return emit(buf, range) }
        switch steps[step] {
        case .split(let splitter):
            if step + 1 == steps.count {
                splitter.split(base, range) { emit(buf, $0) }
            } else {
                splitter.split(base, range) { run(buf, $0, step: step + 1, emit) }
            }
        case .prefixSpace:
            if base[range.lowerBound] == 0x20 { return run(buf, range, step: step + 1, emit) }
            var spaced: [UInt8] = [0x20]
            spaced.append(contentsOf: UnsafeBufferPointer(rebasing: buf[range]))
            spaced.withUnsafeBufferPointer { run($0, 0..<$0.count, step: step + 1, emit) }
        }
    }
}
