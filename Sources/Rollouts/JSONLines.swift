// Fast JSON for rollout records: a byte writer and a pull parser over one line.
//
// Floats are written as the shortest decimal that reads back as the same float32 and parsed with
// strtof (correctly rounded), so a float survives write → read bit for bit. JSON has no NaN or
// infinity: they are written as the strings "NaN", "Infinity", "-Infinity" and read back from them.

import Foundation
import RondoSupport

/// Appends JSON tokens to a byte buffer.
public struct JSONWriter {
    public var bytes: [UInt8] = []
    private var needComma: [Bool] = []

    public init() { bytes.reserveCapacity(4096) }

    public mutating func reset() { bytes.removeAll(keepingCapacity: true); needComma.removeAll(keepingCapacity: true) }

    private mutating func separator() {
        if let last = needComma.last {
            if last { bytes.append(UInt8(ascii: ",")) } else { needComma[needComma.count - 1] = true }
        }
    }

    public mutating func beginObject() { separator(); bytes.append(UInt8(ascii: "{")); needComma.append(false) }
    public mutating func endObject() { needComma.removeLast(); bytes.append(UInt8(ascii: "}")) }
    public mutating func beginArray() { separator(); bytes.append(UInt8(ascii: "[")); needComma.append(false) }
    public mutating func endArray() { needComma.removeLast(); bytes.append(UInt8(ascii: "]")) }

    /// Writes `"name":` (the next value follows without a separator).
    public mutating func key(_ name: StaticString) {
        separator()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        needComma[needComma.count - 1] = false
    }

    public mutating func null() { separator(); bytes.append(contentsOf: [110, 117, 108, 108]) }
    public mutating func bool(_ b: Bool) { separator(); bytes.append(contentsOf: Array((b ? "true" : "false").utf8)) }

    public mutating func int(_ v: Int) {
        separator()
        appendInt(v)
    }

    /// Decimal digits of `v`, two at a time from a table.
    @inline(__always)
    private mutating func appendInt(_ v: Int) {
        if v >= 0 && v < 10 { bytes.append(UInt8(ascii: "0") &+ UInt8(v)); return }
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        var x = v.magnitude
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let n = withUnsafeMutableBytes(of: &tmp) { t -> Int in
            var pos = 24
            while x >= 100 {
                let r = Int(x % 100) * 2
                x /= 100
                pos -= 2
                t[pos] = digitPairs[r]; t[pos + 1] = digitPairs[r + 1]
            }
            if x >= 10 {
                pos -= 2
                t[pos] = digitPairs[Int(x) * 2]; t[pos + 1] = digitPairs[Int(x) * 2 + 1]
            } else {
                pos -= 1
                t[pos] = UInt8(ascii: "0") &+ UInt8(x)
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: t[pos..<24]))
            return 24 - pos
        }
        _ = n
    }

    @inline(__always)
    private mutating func appendFloat(_ v: Float) {
        if v.isFinite {
            var d = v.description
            d.withUTF8 { bytes.append(contentsOf: $0) }
        } else {
            bytes.append(contentsOf: Array(jsonNumber(v).utf8))
        }
    }

    public mutating func uint64(_ v: UInt64) {
        separator()
        bytes.append(contentsOf: Array(String(v).utf8))
    }

    public mutating func float(_ v: Float) {
        separator()
        appendFloat(v)
    }

    public mutating func string(_ s: String) {
        separator()
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { u in
            var start = 0
            for (i, c) in u.enumerated() where c < 0x20 || c == 0x22 || c == 0x5C {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: u[start..<i]))
                switch c {
                case 0x22: bytes.append(contentsOf: [0x5C, 0x22])
                case 0x5C: bytes.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                default: bytes.append(contentsOf: Array(String(format: "\\u%04x", c).utf8))
                }
                start = i + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: u[start..<u.count]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func ints<C: Collection>(_ xs: C) where C.Element: BinaryInteger {
        separator()
        bytes.append(UInt8(ascii: "["))
        var first = true
        for x in xs {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            appendInt(Int(x))
        }
        bytes.append(UInt8(ascii: "]"))
    }

    public mutating func floats(_ xs: [Float]) {
        separator()
        bytes.append(UInt8(ascii: "["))
        for (k, x) in xs.enumerated() {
            if k > 0 { bytes.append(UInt8(ascii: ",")) }
            appendFloat(x)
        }
        bytes.append(UInt8(ascii: "]"))
    }
}

/// "00" "01" … "99" as ASCII pairs.
let digitPairs: [UInt8] = (0..<100).flatMap { [UInt8(ascii: "0") + UInt8($0 / 10), UInt8(ascii: "0") + UInt8($0 % 10)] }

/// A malformed JSON line: what was expected and the byte offset.
public struct JSONParseError: Error, CustomStringConvertible {
    public let description: String
}

/// Pulls JSON values out of one line of bytes.
public struct JSONCursor {
    let p: UnsafeRawBufferPointer
    var i = 0

    public init(_ bytes: UnsafeRawBufferPointer) { p = bytes }

    func fail(_ what: String) -> JSONParseError {
        JSONParseError(description: "\(what) at byte \(i)")
    }

    @inline(__always) mutating func skipSpace() {
        while i < p.count, p[i] == 0x20 || p[i] == 0x09 || p[i] == 0x0A || p[i] == 0x0D { i += 1 }
    }

    @inline(__always) mutating func expect(_ c: UInt8) throws {
        skipSpace()
        guard i < p.count, p[i] == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
        i += 1
    }

    /// True (and consumed) if the next token is `c`.
    @inline(__always) mutating func take(_ c: UInt8) -> Bool {
        skipSpace()
        if i < p.count, p[i] == c { i += 1; return true }
        return false
    }

    public mutating func beginObject() throws { try expect(UInt8(ascii: "{")) }

    /// The next key of the current object, or nil at its end.
    public mutating func nextKey(first: inout Bool) throws -> String? {
        if take(UInt8(ascii: "}")) { return nil }
        if !first { try expect(UInt8(ascii: ",")) }
        first = false
        let k = try string()
        try expect(UInt8(ascii: ":"))
        return k
    }

    public mutating func isNull() -> Bool {
        skipSpace()
        if i + 4 <= p.count, p[i] == 110, p[i + 1] == 117, p[i + 2] == 108, p[i + 3] == 108 { i += 4; return true }
        return false
    }

    public mutating func bool() throws -> Bool {
        skipSpace()
        if i + 4 <= p.count, p[i] == UInt8(ascii: "t") { i += 4; return true }
        if i + 5 <= p.count, p[i] == UInt8(ascii: "f") { i += 5; return false }
        throw fail("expected true or false")
    }

    public mutating func int() throws -> Int {
        skipSpace()
        var neg = false
        if i < p.count, p[i] == UInt8(ascii: "-") { neg = true; i += 1 }
        let start = i
        var v = 0
        while i < p.count, p[i] >= 48, p[i] <= 57 {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(p[i] - 48))
            if o1 || o2 { throw fail("integer out of range") }
            v = a
            i += 1
        }
        guard i > start else { throw fail("expected an integer") }
        if i < p.count, p[i] == UInt8(ascii: ".") || p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            throw fail("expected an integer, found a fraction")
        }
        return neg ? -v : v
    }

    public mutating func uint64() throws -> UInt64 {
        skipSpace()
        let start = i
        while i < p.count, p[i] >= 48, p[i] <= 57 { i += 1 }
        guard i > start, let v = UInt64(String(decoding: UnsafeRawBufferPointer(rebasing: p[start..<i]), as: UTF8.self)) else {
            throw fail("expected an unsigned integer")
        }
        return v
    }

    /// A float: a JSON number (parsed with strtof, correctly rounded) or "NaN"/"Infinity"/"-Infinity".
    public mutating func float() throws -> Float {
        skipSpace()
        guard i < p.count else { throw fail("expected a number") }
        if p[i] == UInt8(ascii: "\"") {
            switch try string() {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            case let s: throw fail("expected a number, found the string \"\(s)\"")
            }
        }
        let start = i
        while i < p.count {
            let c = p[i]
            if (c >= 48 && c <= 57) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { i += 1 } else { break }
        }
        let n = i - start
        guard n > 0, n < 64 else { throw fail("expected a number") }
        if let v = fastFloat(start, i) { return v }
        var buf: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        return try withUnsafeMutableBytes(of: &buf) { b in
            b.copyMemory(from: UnsafeRawBufferPointer(rebasing: p[start..<i]))
            b[n] = 0
            var end: UnsafeMutablePointer<CChar>? = nil
            let cstr = b.baseAddress!.assumingMemoryBound(to: CChar.self)
            let v = strtof(cstr, &end)
            guard end == cstr + n else { throw fail("malformed number") }
            return v
        }
    }

    /// Clinger's fast path: ≤ 15 significant digits and a decimal exponent within ±22 give an exact
    /// Double m·10^e correctly rounded; it rounds to the right Float unless it lands exactly on a
    /// midpoint between two floats (then, and for anything unusual, nil sends us to strtof).
    @inline(__always)
    func fastFloat(_ start: Int, _ end: Int) -> Float? {
        var j = start
        var neg = false
        if p[j] == UInt8(ascii: "-") { neg = true; j += 1 }
        var m: UInt64 = 0, digits = 0, exp10 = 0
        var sawDigit = false
        while j < end, p[j] >= 48, p[j] <= 57 {
            if m != 0 || p[j] != 48 { digits += 1 }
            m = m &* 10 &+ UInt64(p[j] - 48); j += 1; sawDigit = true
        }
        if j < end, p[j] == UInt8(ascii: ".") {
            j += 1
            while j < end, p[j] >= 48, p[j] <= 57 {
                if m != 0 || p[j] != 48 { digits += 1 }
                m = m &* 10 &+ UInt64(p[j] - 48); j += 1; exp10 -= 1; sawDigit = true
            }
        }
        guard sawDigit, digits <= 15 else { return nil }
        if j < end, p[j] == UInt8(ascii: "e") || p[j] == UInt8(ascii: "E") {
            j += 1
            var eneg = false
            if j < end, p[j] == UInt8(ascii: "-") || p[j] == UInt8(ascii: "+") { eneg = p[j] == UInt8(ascii: "-"); j += 1 }
            var e = 0, ed = 0
            while j < end, p[j] >= 48, p[j] <= 57, ed < 4 { e = e * 10 + Int(p[j] - 48); j += 1; ed += 1 }
            guard ed > 0 else { return nil }
            exp10 += eneg ? -e : e
        }
        guard j == end, exp10 >= -22, exp10 <= 22 else { return nil }
        var r = Double(m)
        r = exp10 >= 0 ? r * powersOf10[exp10] : r / powersOf10[-exp10]
        if r == 0 { return neg ? -0.0 : 0 }
        // Float normal range only, and not exactly on a float rounding midpoint.
        guard r >= 1.1754943508222875e-38, r < 3.4028234663852886e38 else { return nil }
        if r.bitPattern & 0x1FFF_FFFF == 0x1000_0000 { return nil }
        let f = Float(r)
        return neg ? -f : f
    }

    public mutating func string() throws -> String {
        try expect(UInt8(ascii: "\""))
        let start = i
        // Fast path: no escapes.
        while i < p.count, p[i] != UInt8(ascii: "\""), p[i] != UInt8(ascii: "\\") { i += 1 }
        if i < p.count, p[i] == UInt8(ascii: "\"") {
            defer { i += 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: p[start..<i]), as: UTF8.self)
        }
        var out = [UInt8](UnsafeRawBufferPointer(rebasing: p[start..<i]))
        while true {
            guard i < p.count else { throw fail("unterminated string") }
            let c = p[i]
            i += 1
            if c == UInt8(ascii: "\"") { break }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard i < p.count else { throw fail("unterminated escape") }
            let e = p[i]
            i += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "\""): out.append(e)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar), i + 6 <= p.count, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u") {
                    let save = i
                    i += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else { i = save }
                }
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw fail("invalid escape")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= p.count else { throw fail("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = p[i]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 97...102: d = UInt32(c - 87)
            case 65...70: d = UInt32(c - 55)
            default: throw fail("bad hex digit")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    public mutating func ints() throws -> [Int] {
        try expect(UInt8(ascii: "["))
        var out: [Int] = []
        if take(UInt8(ascii: "]")) { return out }
        repeat { out.append(try int()) } while take(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
        return out
    }

    public mutating func floats() throws -> [Float] {
        try expect(UInt8(ascii: "["))
        var out: [Float] = []
        if take(UInt8(ascii: "]")) { return out }
        repeat { out.append(try float()) } while take(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
        return out
    }

    /// Skips any JSON value (unknown keys are kept readable by newer readers).
    public mutating func skipValue() throws {
        skipSpace()
        guard i < p.count else { throw fail("expected a value") }
        switch p[i] {
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "{"):
            i += 1
            var first = true
            while try nextKey(first: &first) != nil { try skipValue() }
        case UInt8(ascii: "["):
            i += 1
            if take(UInt8(ascii: "]")) { return }
            repeat { try skipValue() } while take(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"))
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try bool()
        case UInt8(ascii: "n"): guard isNull() else { throw fail("expected null") }
        default: _ = try float()
        }
    }

    /// Only whitespace remains.
    public mutating func end() throws {
        skipSpace()
        guard i == p.count else { throw fail("unexpected trailing characters") }
    }
}

/// 10^0 … 10^22, all exact in Double.
let powersOf10: [Double] = (0...22).map { k in (0..<k).reduce(1.0) { a, _ in a * 10 } }
