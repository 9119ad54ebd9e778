// Python's arithmetic, concatenation and comparison operators on template values. Using an
// undefined value in arithmetic is an error (jinja2's default Undefined), `~` prints it as ''.

import Foundation

/// The operators of template expressions.
enum Operators {
    static func unary(_ op: String, _ v: Value) throws -> Value {
        if case .undefined(let why) = v { throw ValueError(why) }
        switch (op, v) {
        case ("-", .int(let i)): return .int(-i)
        case ("-", .double(let d)): return .double(-d)
        case ("-", .bool(let b)): return .int(b ? -1 : 0)
        case ("+", .int), ("+", .double): return v
        case ("+", .bool(let b)): return .int(b ? 1 : 0)
        default: throw ValueError("bad operand type for unary \(op): '\(v.typeName)'")
        }
    }

    static func binary(_ op: String, _ a: Value, _ b: Value) throws -> Value {
        if op == "~" { return .string(a.rendered + b.rendered) }
        if case .undefined(let why) = a { throw ValueError(why) }
        if case .undefined(let why) = b { throw ValueError(why) }
        switch (op, a, b) {
        case ("+", .string(let x), .string(let y)): return .string(x + y)
        case ("+", .list(let x), .list(let y)): return .list(x + y)
        case ("+", .tuple(let x), .tuple(let y)): return .tuple(x + y)
        case ("*", .string(let s), _), ("*", _, .string(let s)):
            guard let n = (a.integer != nil ? a : b).integer else { break }
            return .string(String(repeating: s, count: max(n, 0)))
        case ("*", .list(let l), _), ("*", _, .list(let l)):
            guard let n = (a.integer != nil ? a : b).integer else { break }
            return .list(Array([[Value]](repeating: l, count: max(n, 0)).joined()))
        case ("%", .string, _):
            throw ValueError("printf-style string formatting ('%' on a string) is not supported")
        default: break
        }
        if let x = a.integer, let y = b.integer { return try integer(op, x, y) }
        if let x = a.number, let y = b.number { return try real(op, x, y) }
        throw ValueError("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
    }

    private static func integer(_ op: String, _ x: Int, _ y: Int) throws -> Value {
        switch op {
        case "+": return .int(x &+ y)
        case "-": return .int(x &- y)
        case "*": return .int(x &* y)
        case "/":
            guard y != 0 else { throw ValueError("division by zero") }
            return .double(Double(x) / Double(y))
        case "//", "%":
            guard y != 0 else { throw ValueError("integer division or modulo by zero") }
            var q = x / y, r = x % y
            if r != 0 && (r < 0) != (y < 0) { q -= 1; r += y }  // Python floors
            return .int(op == "//" ? q : r)
        case "**":
            guard y >= 0 else { return .double(pow(Double(x), Double(y))) }
            var r = 1
            for _ in 0..<y { r = r &* x }
            return .int(r)
        default: throw ValueError("unknown operator \(op)")
        }
    }

    private static func real(_ op: String, _ x: Double, _ y: Double) throws -> Value {
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw ValueError("float division by zero") }
            return .double(x / y)
        case "//", "%":
            guard y != 0 else { throw ValueError("float modulo") }
            let q = (x / y).rounded(.down)
            return .double(op == "//" ? q : x - q * y)
        case "**": return .double(pow(x, y))
        default: throw ValueError("unknown operator \(op)")
        }
    }

    /// One link of a comparison chain.
    static func compare(_ op: String, _ a: Value, _ b: Value) throws -> Bool {
        switch op {
        case "==": return valuesEqual(a, b)
        case "!=": return !valuesEqual(a, b)
        case "in": return try contains(b, a)
        case "notin": return !(try contains(b, a))
        default: break
        }
        let order: Int
        switch (a, b) {
        case (.string(let x), .string(let y)):
            order = x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars) ? -1 : (valuesEqual(a, b) ? 0 : 1)
        default:
            guard let x = a.number, let y = b.number else {
                if case .undefined(let why) = a { throw ValueError(why) }
                if case .undefined(let why) = b { throw ValueError(why) }
                throw ValueError("'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
            }
            order = x < y ? -1 : (x == y ? 0 : 1)
        }
        switch op {
        case "<": return order < 0
        case ">": return order > 0
        case "<=": return order <= 0
        default: return order >= 0
        }
    }

    /// Python `item in container`.
    static func contains(_ container: Value, _ item: Value) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let sub) = item else {
                throw ValueError("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return findScalars(Array(s.unicodeScalars), Array(sub.unicodeScalars), from: 0) != nil
        case .list(let l), .tuple(let l): return l.contains { valuesEqual($0, item) }
        case .dict(let d):
            guard case .string(let k) = item else { return false }
            return d[k] != nil
        case .undefined: return false
        default: throw ValueError("argument of type '\(container.typeName)' is not iterable")
        }
    }
}

/// The first index ≥ `from` where `needle` occurs in `hay` (code points, as Python compares).
func findScalars(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar], from: Int) -> Int? {
    if needle.isEmpty { return from <= hay.count ? from : nil }
    guard hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
    for i in from...(hay.count - needle.count) where hay[i] == needle[0] {
        if hay[(i + 1)..<(i + needle.count)].elementsEqual(needle[1...]) { return i }
    }
    return nil
}
