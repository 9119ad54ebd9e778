// Hand-written scanners for the two pre-tokenizer regexes byte-level BPE tokenizers use, matching
// HF tokenizers (Oniguruma, leftmost-first alternation) piece for piece on UTF-8 bytes:
//
// GPT-2 (ByteLevel use_regex=true):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Llama-3 (Split, Isolated; Qwen2 has \p{N} instead of \p{N}{1,3}):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// \p{L} and \p{N} are general categories L* and N*; \s is Unicode White_Space. Both patterns match
// every character, so a scanner returns, for a start position, where the match starting there ends.

/// Character classes of the pre-tokenizer patterns, one bit each.
enum CharClass {
    /// \p{L}: general category Lu, Ll, Lt, Lm, Lo.
    static let letter: UInt8 = 1
    /// \p{N}: general category Nd, Nl, No.
    static let number: UInt8 = 2
    /// \s: Unicode White_Space.
    static let space: UInt8 = 4
    /// \w as the Rust regex crate defines it (Alphabetic, M*, Nd, Pc, Join_Control); added tokens'
    /// `single_word` uses it.
    static let word: UInt8 = 8

    static func compute(_ s: Unicode.Scalar) -> UInt8 {
        let p = s.properties
        var c: UInt8 = 0
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            c |= letter
        case .decimalNumber:
            c |= number | word
        case .letterNumber, .otherNumber:
            c |= number
        case .nonspacingMark, .spacingMark, .enclosingMark, .connectorPunctuation:
            c |= word
        default:
            break
        }
        if p.isWhitespace { c |= space }
        if p.isAlphabetic || p.isJoinControl { c |= word }
        return c
    }

    /// Blocks of the BMP whose every code point has one class (Unicode ≥ 14), filled without
    /// asking the property tables: CJK Ext. A and Unified Ideographs, Hangul syllables (all Lo),
    /// surrogates and the private use area (no class). A test checks them against `compute`.
    static let uniformBlocks: [(ClosedRange<Int>, UInt8)] = [
        (0x3400...0x4DBF, letter | word), (0x4E00...0x9FFF, letter | word), (0xAC00...0xD7A3, letter | word),
        (0xD800...0xF8FF, 0),
    ]

    /// Classes of U+0000…U+FFFF, computed once per process (64 KiB, never freed).
    static let bmp: UnsafePointer<UInt8> = {
        let t = UnsafeMutablePointer<UInt8>.allocate(capacity: 0x10000)
        var v = 0
        for (block, c) in uniformBlocks {
            while v < block.lowerBound {
                t[v] = Unicode.Scalar(UInt32(v)).map(compute) ?? 0
                v += 1
            }
            (t + v).initialize(repeating: c, count: block.count)
            v = block.upperBound + 1
        }
        while v < 0x10000 {
            t[v] = Unicode.Scalar(UInt32(v)).map(compute) ?? 0
            v += 1
        }
        return UnsafePointer(t)
    }()

    /// The class of scalar value `v` (`table` is `bmp`, passed in to keep it in a register).
    @inline(__always)
    static func of(_ v: UInt32, _ table: UnsafePointer<UInt8>) -> UInt8 {
        v < 0x10000 ? table[Int(v)] : (Unicode.Scalar(v).map(compute) ?? 0)
    }
}

/// The scalar value and byte length of the UTF-8 sequence starting at `p[i]` (valid UTF-8).
@inline(__always)
func scalarAt(_ p: UnsafePointer<UInt8>, _ i: Int) -> (value: UInt32, length: Int) {
    let b0 = UInt32(p[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1]) & 0x3F, 2) }
    if b0 < 0xF0 {
        return ((b0 & 0x0F) << 12 | (UInt32(p[i + 1]) & 0x3F) << 6 | UInt32(p[i + 2]) & 0x3F, 3)
    }
    let v = (b0 & 0x07) << 18 | (UInt32(p[i + 1]) & 0x3F) << 12 | (UInt32(p[i + 2]) & 0x3F) << 6
        | UInt32(p[i + 3]) & 0x3F
    return (v, 4)
}

/// One of the two hand-written patterns.
struct PatternScanner {
    enum Pattern: Equatable {
        case gpt2
        /// Llama-3 with `\p{N}{1,maxDigits}` (3 for Llama-3, 1 for Qwen2).
        case llama3(maxDigits: Int)
    }

    static let gpt2Pattern =
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The scanner for a Split regex, if it is one of the known patterns.
    static func forRegex(_ pattern: String) -> PatternScanner? {
        switch pattern {
        case gpt2Pattern: return PatternScanner(pattern: .gpt2)
        case llama3Pattern: return PatternScanner(pattern: .llama3(maxDigits: 3))
        case qwen2Pattern: return PatternScanner(pattern: .llama3(maxDigits: 1))
        default: return nil
        }
    }

    let pattern: Pattern
    let table: UnsafePointer<UInt8> = CharClass.bmp

    /// Calls `body` with each piece of `p[range]`, in order; the pieces tile the range.
    @inline(__always)
    func split(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var i = range.lowerBound
        let end = range.upperBound
        switch pattern {
        case .gpt2:
            while i < end {
                let j = gpt2End(p, i, end)
                body(i..<j)
                i = j
            }
        case .llama3(let maxDigits):
            while i < end {
                let j = llama3End(p, i, end, maxDigits)
                body(i..<j)
                i = j
            }
        }
    }

    /// Appends the end offset of each piece of `p[range]` to `ends`.
    func appendEnds(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, _ ends: inout [Int]) {
        var i = range.lowerBound
        let end = range.upperBound
        switch pattern {
        case .gpt2:
            while i < end {
                i = gpt2End(p, i, end)
                ends.append(i)
            }
        case .llama3(let maxDigits):
            while i < end {
                i = llama3End(p, i, end, maxDigits)
                ends.append(i)
            }
        }
    }

    @inline(__always)
    private func cls(_ p: UnsafePointer<UInt8>, _ i: Int) -> (UInt8, Int) {
        let b0 = p[i]
        if b0 < 0x80 { return (table[Int(b0)], 1) }
        let (v, n) = scalarAt(p, i)
        return (CharClass.of(v, table), n)
    }

    /// End of the run of characters from `i` whose class intersects `mask` (or, with `none`, whose
    /// class does not intersect it).
    @inline(__always)
    private func run(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int, _ mask: UInt8, none: Bool = false) -> Int {
        var i = i
        while i < end {
            let (k, n) = cls(p, i)
            if (k & mask != 0) == none { break }
            i += n
        }
        return i
    }

    /// Whitespace alternatives shared by both patterns, for a whitespace character at `start`:
    /// `\s*[\r\n]+` (Llama-3 only, when `newlines`), then `\s+(?!\S)`, then `\s+`.
    @inline(__always)
    private func whitespaceEnd(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, newlines: Bool) -> Int {
        var i = start
        var last = start  // start of the run's last character
        var afterNewline = -1  // just past the run's last \r or \n
        while i < end {
            let (k, n) = cls(p, i)
            if k & CharClass.space == 0 { break }
            if p[i] == 0x0A || p[i] == 0x0D { afterNewline = i + 1 }
            last = i
            i += n
        }
        if i == start { return start + scalarAt(p, start).length }  // not reached for valid input
        if newlines && afterNewline > 0 { return afterNewline }
        if i == end { return end }
        return last > start ? last : i
    }

    private func gpt2End(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        let c0 = p[start]
        if c0 == UInt8(ascii: "'"), start + 1 < end {
            let c1 = p[start + 1]
            if c1 == UInt8(ascii: "s") || c1 == UInt8(ascii: "t") || c1 == UInt8(ascii: "m") || c1 == UInt8(ascii: "d") {
                return start + 2
            }
            if start + 2 < end {
                let c2 = p[start + 2]
                if (c2 == UInt8(ascii: "e") && (c1 == UInt8(ascii: "r") || c1 == UInt8(ascii: "v")))
                    || (c1 == UInt8(ascii: "l") && c2 == UInt8(ascii: "l")) {
                    return start + 3
                }
            }
        }
        var i = start
        var (k, n) = cls(p, start)
        if c0 == 0x20, start + 1 < end {  // ` ?` before a letter, number or other run
            let (k1, n1) = cls(p, start + 1)
            if k1 & CharClass.space == 0 { i = start + 1; k = k1; n = n1 }
        }
        if k & CharClass.letter != 0 { return run(p, i + n, end, CharClass.letter) }
        if k & CharClass.number != 0 { return run(p, i + n, end, CharClass.number) }
        if k & CharClass.space == 0 {
            return run(p, i + n, end, CharClass.letter | CharClass.number | CharClass.space, none: true)
        }
        return whitespaceEnd(p, start, end, newlines: false)
    }

    private func llama3End(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, _ maxDigits: Int) -> Int {
        let c0 = p[start]
        if c0 == UInt8(ascii: "'"), start + 1 < end {
            // (?i:…): ASCII letters fold by | 0x20; U+017F LONG S (C5 BF) folds to s.
            let c1 = p[start + 1] | 0x20
            if c1 == UInt8(ascii: "s") || c1 == UInt8(ascii: "t") || c1 == UInt8(ascii: "m") || c1 == UInt8(ascii: "d") {
                return start + 2
            }
            if start + 2 < end {
                if p[start + 1] == 0xC5 && p[start + 2] == 0xBF { return start + 3 }
                let c2 = p[start + 2] | 0x20
                if (c2 == UInt8(ascii: "e") && (c1 == UInt8(ascii: "r") || c1 == UInt8(ascii: "v")))
                    || (c1 == UInt8(ascii: "l") && c2 == UInt8(ascii: "l")) {
                    return start + 3
                }
            }
        }
        let (k0, n0) = cls(p, start)
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if k0 & CharClass.letter != 0 { return run(p, start + n0, end, CharClass.letter) }
        if k0 & CharClass.number == 0 && c0 != 0x0A && c0 != 0x0D && start + n0 < end {
            let (k1, n1) = cls(p, start + n0)
            if k1 & CharClass.letter != 0 { return run(p, start + n0 + n1, end, CharClass.letter) }
        }
        // \p{N}{1,maxDigits}
        if k0 & CharClass.number != 0 {
            var i = start + n0
            var count = 1
            while count < maxDigits && i < end {
                let (k, n) = cls(p, i)
                if k & CharClass.number == 0 { break }
                i += n
                count += 1
            }
            return i
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        var i = start
        if c0 == 0x20 && start + 1 < end { i = start + 1 }
        let (k, n) = i == start ? (k0, n0) : cls(p, i)
        if k & (CharClass.letter | CharClass.number | CharClass.space) == 0 {
            i = run(p, i + n, end, CharClass.letter | CharClass.number | CharClass.space, none: true)
            while i < end && (p[i] == 0x0A || p[i] == 0x0D) { i += 1 }
            return i
        }
        return whitespaceEnd(p, start, end, newlines: true)
    }
}
