// JSON in and out of template values. Reading keeps object key order (Foundation's
// JSONSerialization does not), because `tojson` must print keys in the order the messages and
// tools were given; integers stay integers. Writing is Python's
// `json.dumps(x, ensure_ascii=False, indent=indent, ...)`, which transformers' `tojson` filter calls.

import Foundation

/// Ordered JSON parsing and Python-compatible JSON writing.
public enum JSON {
    /// Parses JSON text into a value, keeping object key order. `source` names the text in errors.
    public static func parse(_ data: Data, source: String) throws -> Value {
        var p = Reader(bytes: Array(data), source: source)
        p.skipSpace()
        let v = try p.value()
        p.skipSpace()
        guard p.i == p.bytes.count else { throw p.error("unexpected text after the JSON value") }
        return v
    }

    /// `v` as JSON text, as Python's `json.dumps(v, ensure_ascii=False)` writes it.
    public static func text(_ v: Value) throws -> String {
        do { return try dumps(v, DumpOptions()) } catch let e as ValueError {
            throw TemplateError(.runtime, e.message, template: "JSON")
        }
    }

    /// The arguments of Python's `json.dumps` that transformers' `tojson` passes on.
    struct DumpOptions {
        var indent: String?
        var ensureASCII = false
        /// Between items and between a key and its value; Python's defaults depend on `indent`.
        var separators: (item: String, key: String)?
        var sortKeys = false
    }

    /// Python `json.dumps(v, ...)`: `", "` and `": "` separators without indent; with one, items
    /// on their own lines and `","` at line ends.
    static func dumps(_ v: Value, _ o: DumpOptions, level: Int = 0) throws -> String {
        let (itemSep, keySep) = o.separators ?? (o.indent == nil ? ", " : ",", ": ")
        switch v {
        case .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
            return pythonFloat(d)
        case .string(let s): return quote(s, ensureASCII: o.ensureASCII)
        case .list(let l), .tuple(let l):
            return container("[", "]", try l.map { try dumps($0, o, level: level + 1) }, o.indent, itemSep, level)
        case .dict(let d):
            var pairs = d.pairs
            if o.sortKeys { pairs.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) } }
            let items = try pairs.map { quote($0.0, ensureASCII: o.ensureASCII) + keySep + (try dumps($0.1, o, level: level + 1)) }
            return container("{", "}", items, o.indent, itemSep, level)
        case .namespace(let n): return try dumps(.dict(n.attributes), o, level: level)
        case .undefined, .callable:
            throw ValueError("Object of type \(v.typeName) is not JSON serializable")
        }
    }

    private static func container(_ open: String, _ close: String, _ items: [String], _ indent: String?,
                                  _ separator: String, _ level: Int) -> String {
        guard !items.isEmpty else { return open + close }
        guard let indent else { return open + items.joined(separator: separator) + close }
        let inner = "\n" + String(repeating: indent, count: level + 1)
        return open + inner + items.joined(separator: separator + inner) + "\n" + String(repeating: indent, count: level) + close
    }

    /// `indent` as Python's json takes it: None, a number of spaces, or a string.
    static func indent(_ v: Value?) throws -> String? {
        switch v {
        case nil, .none?: return nil
        case .int(let n)?: return String(repeating: " ", count: max(n, 0))
        case .string(let s)?: return s
        case let other?: throw ValueError("tojson indent must be an integer or a string, not \(other.typeName)")
        }
    }

    /// A JSON string literal as Python's json writes it (ensure_ascii: every non-ASCII code point
    /// as `\uXXXX`, UTF-16 surrogate pairs above U+FFFF). `lineSafe` also escapes U+2028 and
    /// U+2029, which some JSON-lines readers split on (for Rondo's own output lines).
    static func quote(_ s: String, ensureASCII: Bool = false, lineSafe: Bool = false) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where u.value < 0x20 || (ensureASCII && u.value > 0x7E)
                || (lineSafe && (u.value == 0x2028 || u.value == 0x2029)):
                for unit in String(u).utf16 {
                    let hex = String(unit, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    private struct Reader {
        let bytes: [UInt8]
        let source: String
        var i = 0

        init(bytes: [UInt8], source: String) {
            self.bytes = bytes
            self.source = source
        }

        func error(_ message: String) -> TemplateError {
            TemplateError(.loading, "invalid JSON at byte \(i): \(message)", template: source)
        }

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        mutating func literal(_ word: String, _ v: Value) throws -> Value {
            let w = Array(word.utf8)
            guard bytes.count - i >= w.count, Array(bytes[i..<(i + w.count)]) == w else { throw error("unexpected character") }
            i += w.count
            return v
        }

        mutating func value() throws -> Value {
            guard i < bytes.count else { throw error("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var d = OrderedDict()
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .dict(d) }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                    let k = try string()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                    i += 1
                    skipSpace()
                    d[k] = try value()
                    skipSpace()
                    guard i < bytes.count else { throw error("unexpected end in an object") }
                    i += 1
                    if bytes[i - 1] == UInt8(ascii: "}") { return .dict(d) }
                    guard bytes[i - 1] == UInt8(ascii: ",") else { throw error("expected ',' or '}'") }
                }
            case UInt8(ascii: "["):
                i += 1
                var l: [Value] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .list(l) }
                while true {
                    skipSpace()
                    l.append(try value())
                    skipSpace()
                    guard i < bytes.count else { throw error("unexpected end in an array") }
                    i += 1
                    if bytes[i - 1] == UInt8(ascii: "]") { return .list(l) }
                    guard bytes[i - 1] == UInt8(ascii: ",") else { throw error("expected ',' or ']'") }
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .none)
            default: return try number()
            }
        }

        mutating func number() throws -> Value {
            let s = i
            var isInt = true
            while i < bytes.count, let c = Optional(bytes[i]),
                  (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+")
                    || c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { isInt = false }
                i += 1
            }
            let text = String(decoding: bytes[s..<i], as: UTF8.self)
            if isInt, let n = Int(text) { return .int(n) }
            guard !text.isEmpty, let d = Double(text) else { i = s; throw error("unexpected character") }
            return .double(d)
        }

        mutating func string() throws -> String {
            i += 1
            var out = [UInt8]()
            while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                if bytes[i] != UInt8(ascii: "\\") { out.append(bytes[i]); i += 1; continue }
                i += 1
                guard i < bytes.count else { break }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code), bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"),
                       bytes[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out.append(contentsOf: Array(String(Unicode.Scalar(code) ?? "\u{FFFD}").utf8))
                default: out.append(e)
                }
            }
            guard i < bytes.count else { throw error("unterminated string") }
            i += 1
            return String(decoding: out, as: UTF8.self)
        }

        mutating func hex4() throws -> UInt32 {
            guard bytes.count - i >= 4, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else {
                throw error("bad \\u escape")
            }
            i += 4
            return v
        }
    }
}
