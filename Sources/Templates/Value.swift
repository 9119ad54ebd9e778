// The values a chat template computes with, following Python/Jinja2 semantics where they differ
// from Swift's (truthiness, `str()`, equality of 1 and 1.0 and True, code-point strings).
// Reference: jinja2 3.1 `runtime.Undefined`, Python's data model.

import Foundation

/// A Jinja value: JSON's kinds plus Jinja's `undefined`, namespaces and callables.
public enum Value: Sendable {
    /// A missing variable, key or attribute; the text is the error that using it raises.
    case undefined(String)
    /// JSON null, Python None.
    case none
    case bool(Bool)
    /// JSON numbers without a fraction or exponent.
    case int(Int)
    case double(Double)
    /// Text; indexed, sliced and measured in code points, as Python does.
    case string(String)
    /// A list (JSON array).
    case list([Value])
    /// A tuple: `(a, b)`, the pairs of `dict.items()`; prints as Python prints a tuple.
    case tuple([Value])
    /// A dictionary that keeps insertion order (Python 3.7+ `dict`).
    case dict(OrderedDict)
    /// `namespace(...)`: a mutable object whose attributes `set ns.x = ...` may change.
    case namespace(Namespace)
    /// A function: a global (`raise_exception`), a macro, a bound method.
    case callable(Callable)
}

/// An insertion-ordered string-keyed dictionary.
public struct OrderedDict: Sendable {
    /// The keys in insertion order.
    public private(set) var keys: [String] = []
    private var storage: [String: Value] = [:]

    /// An empty dictionary.
    public init() {}
    /// The pairs in order (a repeated key keeps its first position and its last value).
    public init(_ pairs: [(String, Value)]) { for (k, v) in pairs { self[k] = v } }

    /// The value of `key`; setting nil removes it.
    public subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }
    /// Number of keys.
    public var count: Int { keys.count }
    /// (key, value) in insertion order.
    public var pairs: [(String, Value)] { keys.map { ($0, storage[$0]!) } }
}

/// The mutable state of a `namespace()` object.
public final class Namespace: @unchecked Sendable {
    var attributes: OrderedDict
    init(_ attributes: OrderedDict) { self.attributes = attributes }
}

/// A callable value: positional and keyword arguments in, a value out.
public struct Callable: @unchecked Sendable {
    /// The function's name, for messages.
    public let name: String
    let call: ([Value], [(String, Value)]) throws -> Value
    init(_ name: String, _ call: @escaping ([Value], [(String, Value)]) throws -> Value) {
        self.name = name
        self.call = call
    }
}

extension Value {
    /// Python truthiness (undefined is false).
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let l), .tuple(let l): return !l.isEmpty
        case .dict(let d): return d.count > 0
        case .namespace, .callable: return true
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true }; return false }

    /// Python's type name, for error messages ("str", "dict", ...).
    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        }
    }

    /// A number as a Double (bools count as 0/1, as in Python).
    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// An integer (bools count as 0/1).
    var integer: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// What `{{ x }}` prints: Python `str(x)`, undefined as ''.
    var rendered: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr
        }
    }

    /// Python `repr(x)` (what a list prints for its items).
    var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloat(d)
        case .string(let s): return pythonStringRepr(s)
        case .list(let l): return "[" + l.map(\.repr).joined(separator: ", ") + "]"
        case .tuple(let l): return "(" + l.map(\.repr).joined(separator: ", ") + (l.count == 1 ? ",)" : ")")
        case .dict(let d):
            return "{" + d.pairs.map { pythonStringRepr($0.0) + ": " + $0.1.repr }.joined(separator: ", ") + "}"
        case .namespace(let n): return "<Namespace " + Value.dict(n.attributes).repr + ">"
        case .callable(let c): return "<function \(c.name)>"
        }
    }

    /// Items when iterated: list items, dict keys, string characters (code points); undefined is empty.
    func iterated() -> [Value]? {
        switch self {
        case .undefined: return []
        case .list(let l), .tuple(let l): return l
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        default: return nil
        }
    }
}

/// Python `repr(float)`: the shortest round-trip digits, `1.0` for integral values, `inf`, `nan`.
func pythonFloat(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d > 0 ? "inf" : "-inf" }
    return d.description  // Swift prints the shortest round-trip form with Python's exponent style
}

/// Python `repr(str)`: single quotes unless the text has a single quote and no double quote.
func pythonStringRepr(_ s: String) -> String {
    let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
    var out = String(quote)
    for u in s.unicodeScalars {
        switch u {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where Character(u) == quote: out += "\\" + String(quote)
        case _ where u.value < 0x20 || u.value == 0x7F:
            let hex = String(u.value, radix: 16)
            out += "\\x" + (hex.count < 2 ? "0" : "") + hex
        default: out.unicodeScalars.append(u)
        }
    }
    out.append(quote)
    return out
}

/// Python `==`: numbers compare by value (1 == 1.0 == True), containers element-wise,
/// undefined equals only undefined.
func valuesEqual(_ a: Value, _ b: Value) -> Bool {
    switch (a, b) {
    case (.undefined, .undefined), (.none, .none): return true
    case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)  // Python: code points
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        return x.count == y.count && zip(x, y).allSatisfy(valuesEqual)
    case (.dict(let x), .dict(let y)):
        return x.count == y.count && x.pairs.allSatisfy { k, v in y[k].map { valuesEqual(v, $0) } ?? false }
    case (.namespace(let x), .namespace(let y)): return x === y
    default:
        if let x = a.number, let y = b.number { return x == y }
        return false
    }
}

/// Python whitespace (`str.isspace`), used by `strip()`, `split()` and `trim`.
func isPythonSpace(_ u: Unicode.Scalar) -> Bool {
    switch u.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default: return false
    }
}
