// Jinja2 filters (`x | name(args)`) and tests (`x is name`) that chat templates use, with
// jinja2 3.1's semantics (jinja2/filters.py, jinja2/tests.py) and transformers' `tojson`
// (Python `json.dumps`, see JSON.swift). Unknown names are errors, never a silent pass-through.

/// One filter application: the value, its arguments, and the evaluator (for attribute lookups).
struct FilterCall {
    let name: String
    let value: Value
    let args: [Value]
    let kwargs: [(String, Value)]
    let evaluator: Renderer

    /// Argument `k`, or keyword `key`.
    func arg(_ k: Int, _ key: String) -> Value? {
        k < args.count ? args[k] : kwargs.first { $0.0 == key }?.1
    }

    /// The value's items (list items, dict keys, string characters).
    func items() throws -> [Value] {
        guard let items = value.iterated() else { throw ValueError("'\(value.typeName)' object is not iterable") }
        return items
    }
}

/// The supported filters.
enum Filters {
    static let text: Set<String> = ["trim", "string", "safe", "upper", "lower", "capitalize", "title", "replace"]
    static let sequence: Set<String> = ["length", "count", "join", "first", "last", "items", "list", "reverse"]
    static let selection: Set<String> = ["map", "select", "reject", "selectattr", "rejectattr"]

    static func apply(_ name: String, _ v: Value, _ args: [Value], _ kwargs: [(String, Value)],
                      evaluator: Renderer) throws -> Value {
        let call = FilterCall(name: name, value: v, args: args, kwargs: kwargs, evaluator: evaluator)
        if text.contains(name) { return try textFilter(call) }
        if sequence.contains(name) { return try sequenceFilter(call) }
        if selection.contains(name) { return try selectionFilter(call) }
        switch name {
        case "tojson": return try tojson(call)
        case "default", "d":
            let fallback = call.arg(0, "default_value") ?? .string("")
            let boolean = call.arg(1, "boolean")?.truthy ?? false
            return v.isUndefined || (boolean && !v.truthy) ? fallback : v
        case "int":
            if let i = v.integer { return .int(i) }
            if case .double(let d) = v { return .int(Int(d)) }
            if case .string(let s) = v, let i = Int(Methods.strip(Array(s.unicodeScalars), chars: nil)) { return .int(i) }
            return call.arg(0, "default") ?? .int(0)
        case "float":
            if let d = v.number { return .double(d) }
            if case .string(let s) = v, let d = Double(Methods.strip(Array(s.unicodeScalars), chars: nil)) { return .double(d) }
            return call.arg(0, "default") ?? .double(0)
        case "abs":
            if case .int(let i) = v { return .int(abs(i)) }
            if case .double(let d) = v { return .double(abs(d)) }
            throw ValueError("bad operand type for abs(): '\(v.typeName)'")
        default:
            throw ValueError("unsupported filter '\(name)'")
        }
    }

    /// transformers' `tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
    private static func tojson(_ c: FilterCall) throws -> Value {
        var o = JSON.DumpOptions(indent: try JSON.indent(c.arg(1, "indent")))
        o.ensureASCII = c.arg(0, "ensure_ascii")?.truthy ?? false
        o.sortKeys = c.arg(3, "sort_keys")?.truthy ?? false
        switch c.arg(2, "separators") {
        case nil, .none?: break
        case .list(let l)? where l.count == 2, .tuple(let l)? where l.count == 2:
            guard case .string(let item) = l[0], case .string(let key) = l[1] else { fallthrough }
            o.separators = (item, key)
        default: throw ValueError("tojson separators must be a pair of strings")
        }
        return .string(try JSON.dumps(c.value, o))
    }

    /// Filters of the value's text (`str(value)`).
    private static func textFilter(_ c: FilterCall) throws -> Value {
        let s = c.value.rendered
        switch c.name {
        case "trim":
            let chars: String? = if case .string(let x)? = c.arg(0, "chars") { x } else { nil }
            return .string(Methods.strip(Array(s.unicodeScalars), chars: chars))
        case "string": return .string(s)
        case "safe": return c.value
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "title": return .string(jinjaTitle(s))
        default:  // replace(old, new, count)
            guard let old = c.arg(0, "old"), let new = c.arg(1, "new") else { throw ValueError("replace needs old and new") }
            guard case .callable(let method) = try c.evaluator.attribute(.string(s), "replace") else { throw ValueError("replace") }
            return try method.call([old, new] + (c.arg(2, "count").map { [$0] } ?? []), [])
        }
    }

    /// Filters of the value's items.
    private static func sequenceFilter(_ c: FilterCall) throws -> Value {
        switch c.name {
        case "length", "count": return .int(try length(c.value))
        case "join":
            let sep = c.arg(0, "d")?.rendered ?? ""
            let attribute = c.arg(1, "attribute")
            return .string(try c.items().map { item in try attribute.map { try c.evaluator.attribute(item, $0.rendered) } ?? item }
                .map(\.rendered).joined(separator: sep))
        case "first", "last":
            let items = try c.items()
            return (c.name == "first" ? items.first : items.last) ?? .undefined("No \(c.name) item, sequence was empty.")
        case "items":
            switch c.value {
            case .undefined: return .list([])
            case .dict(let d): return .list(d.pairs.map { .tuple([.string($0.0), $0.1]) })
            default: throw ValueError("Can only get item pairs from a mapping.")
            }
        case "list": return .list(try c.items())
        default:  // reverse
            if case .string(let s) = c.value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .list(try c.items().reversed())
        }
    }

    /// `map`, `select`, `reject`, `selectattr`, `rejectattr`.
    private static func selectionFilter(_ c: FilterCall) throws -> Value {
        let items = try c.items()
        if c.name == "map" {
            if let a = c.kwargs.first(where: { $0.0 == "attribute" })?.1 {
                let dflt = c.kwargs.first { $0.0 == "default" }?.1
                return .list(try items.map { item in
                    let r = try c.evaluator.attribute(item, a.rendered)
                    return r.isUndefined ? dflt ?? r : r
                })
            }
            guard case .string(let f)? = c.args.first else { throw ValueError("map needs a filter name or attribute=") }
            return .list(try items.map { try apply(f, $0, Array(c.args.dropFirst()), [], evaluator: c.evaluator) })
        }
        let byAttribute = c.name.hasSuffix("attr")
        let rest = byAttribute ? Array(c.args.dropFirst()) : c.args
        let keep = c.name.hasPrefix("select")
        return .list(try items.filter { item in
            let subject = byAttribute ? try c.evaluator.attribute(item, c.args.first?.rendered ?? "") : item
            guard case .string(let test)? = rest.first else { return subject.truthy == keep }
            return try Tests.apply(test, subject, Array(rest.dropFirst())) == keep
        })
    }

    /// Python `len(x)`; undefined has length 0.
    static func length(_ v: Value) throws -> Int {
        switch v {
        case .undefined: return 0
        case .string(let s): return s.unicodeScalars.count
        case .list(let l), .tuple(let l): return l.count
        case .dict(let d): return d.count
        default: throw ValueError("object of type '\(v.typeName)' has no len()")
        }
    }

    /// jinja2's `title` filter: upper-case the first letter of every word, where words begin after
    /// whitespace or one of `-({[<`.
    static func jinjaTitle(_ s: String) -> String {
        var out = ""
        var atStart = true
        for c in s.unicodeScalars {
            let separator = isPythonSpace(c) || "-({[<".unicodeScalars.contains(c)
            out += atStart && !separator ? String(c).uppercased() : String(c).lowercased()
            atStart = separator
        }
        return out
    }
}

/// The supported tests.
enum Tests {
    static func apply(_ name: String, _ v: Value, _ args: [Value]) throws -> Bool {
        func other() throws -> Value {
            guard let a = args.first else { throw ValueError("test '\(name)' needs an argument") }
            return a
        }
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "string": if case .string = v { return true }; return false
        case "number": return v.number != nil
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "boolean": if case .bool = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "mapping": if case .dict = v { return true }; return false
        case "iterable": return v.iterated() != nil
        case "sequence":
            switch v {
            case .string, .list, .tuple, .dict, .undefined: return true
            default: return false
            }
        case "callable": if case .callable = v { return true }; return false
        case "even", "odd":
            guard let i = v.integer else { throw ValueError("test '\(name)' needs an integer") }
            return (i % 2 == 0) == (name == "even")
        case "divisibleby":
            guard let i = v.integer, let d = try other().integer, d != 0 else { throw ValueError("divisibleby needs integers") }
            return i % d == 0
        case "eq", "equalto", "==": return valuesEqual(v, try other())
        case "ne", "!=": return !valuesEqual(v, try other())
        case "lt", "<": return try Operators.compare("<", v, other())
        case "le", "<=": return try Operators.compare("<=", v, other())
        case "gt", ">": return try Operators.compare(">", v, other())
        case "ge", ">=": return try Operators.compare(">=", v, other())
        case "in": return try Operators.contains(other(), v)
        case "sameas": return valuesEqual(v, try other())
        case "lower": return v.rendered == v.rendered.lowercased()
        case "upper": return v.rendered == v.rendered.uppercased()
        default: throw ValueError("unsupported test '\(name)'")
        }
    }
}
