// Python methods of str and dict that chat templates call (`content.strip()`,
// `content.split('</think>')`, `message.get('x')`, `tools.items()`), with Python's semantics:
// code-point strings, Python whitespace, `split()` without a separator splitting on runs of
// whitespace. Lists have no methods here (the sandbox forbids mutating them anyway).

/// Bound methods of values.
enum Methods {
    static let stringMethods: Set<String> = [
        "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "upper", "lower", "replace",
        "title", "capitalize", "find", "count", "join", "splitlines", "isdigit", "isspace",
    ]
    static let dictMethods: Set<String> = ["items", "keys", "values", "get"]

    /// `object.name` as a callable, if it is a supported method.
    static func bound(_ object: Value, _ name: String) -> Value? {
        switch object {
        case .string(let s) where stringMethods.contains(name):
            return .callable(Callable("str.\(name)") { args, kwargs in try string(s, name, args, kwargs) })
        case .dict(let d) where dictMethods.contains(name):
            return .callable(Callable("dict.\(name)") { args, _ in try dict(d, name, args) })
        default: return nil
        }
    }

    private static func dict(_ d: OrderedDict, _ name: String, _ args: [Value]) throws -> Value {
        switch name {
        case "items": return .list(d.pairs.map { .tuple([.string($0.0), $0.1]) })
        case "keys": return .list(d.keys.map { .string($0) })
        case "values": return .list(d.pairs.map { $0.1 })
        default:
            guard let key = args.first else { throw ValueError("get expected at least 1 argument, got 0") }
            guard case .string(let k) = key else { return args.count > 1 ? args[1] : .none }
            return d[k] ?? (args.count > 1 ? args[1] : .none)
        }
    }

    /// Argument `k` (or keyword `key`) as an optional string; None counts as absent.
    private static func optionalString(_ args: [Value], _ kwargs: [(String, Value)], _ k: Int, _ key: String,
                                       method: String) throws -> String? {
        let v = k < args.count ? args[k] : kwargs.first { $0.0 == key }?.1
        switch v {
        case nil, .none?: return nil
        case .string(let s)?: return s
        case let other?: throw ValueError("\(method) arg must be None or str, not \(other.typeName)")
        }
    }

    private static func string(_ s: String, _ name: String, _ args: [Value], _ kwargs: [(String, Value)]) throws -> Value {
        let u = Array(s.unicodeScalars)
        func arg(_ k: Int, _ key: String) throws -> String? {
            try optionalString(args, kwargs, k, key, method: name)
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            return .string(strip(u, chars: try arg(0, "chars"), left: name != "rstrip", right: name != "lstrip"))
        case "split", "rsplit":
            let maxsplit = (args.count > 1 ? args[1] : kwargs.first { $0.0 == "maxsplit" }?.1)?.integer ?? -1
            return .list(try split(u, sep: try arg(0, "sep"), maxsplit: maxsplit, fromRight: name == "rsplit")
                .map { .string($0) })
        case "startswith", "endswith":
            guard let p = args.first else { throw ValueError("\(name) takes at least 1 argument (0 given)") }
            let candidates: [Value]
            if case .tuple(let l) = p { candidates = l } else { candidates = [p] }
            for c in candidates {
                guard case .string(let x) = c else {
                    throw ValueError("\(name) first arg must be str or a tuple of str, not \(c.typeName)")
                }
                let xs = Array(x.unicodeScalars)
                if xs.count <= u.count, name == "startswith" ? u.prefix(xs.count).elementsEqual(xs)
                    : u.suffix(xs.count).elementsEqual(xs) { return .bool(true) }
            }
            return .bool(false)
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "title": return .string(pythonTitle(u))
        case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "replace":
            guard args.count >= 2, case .string(let old) = args[0], case .string(let new) = args[1] else {
                throw ValueError("replace expects two strings")
            }
            let count = args.count > 2 ? (args[2].integer ?? -1) : -1
            return .string(replace(u, Array(old.unicodeScalars), new, count: count))
        case "find", "count":
            guard case .string(let x)? = args.first else { throw ValueError("\(name) expects a string") }
            let xs = Array(x.unicodeScalars)
            if name == "find" { return .int(findScalars(u, xs, from: 0) ?? -1) }
            if xs.isEmpty { return .int(u.count + 1) }
            var n = 0, at = 0
            while let i = findScalars(u, xs, from: at) { n += 1; at = i + xs.count }
            return .int(n)
        case "join":
            guard let items = args.first?.iterated() else { throw ValueError("join expects an iterable") }
            return .string(try items.map { item -> String in
                guard case .string(let t) = item else { throw ValueError("sequence item: expected str instance, \(item.typeName) found") }
                return t
            }.joined(separator: s))
        case "splitlines":
            return .list(s.split(omittingEmptySubsequences: false) { $0.isNewline }.map { .string(String($0)) }
                .dropLast(s.last?.isNewline == true ? 1 : 0).map { $0 })
        case "isdigit": return .bool(!u.isEmpty && u.allSatisfy { $0.properties.numericType == .decimal })
        default: return .bool(!u.isEmpty && u.allSatisfy(isPythonSpace))
        }
    }

    /// Python `str.strip(chars)`: whitespace when `chars` is nil.
    static func strip(_ u: [Unicode.Scalar], chars: String?, left: Bool = true, right: Bool = true) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func drop(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPythonSpace(c) }
        var lo = 0, hi = u.count
        if left { while lo < hi, drop(u[lo]) { lo += 1 } }
        if right { while hi > lo, drop(u[hi - 1]) { hi -= 1 } }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: u[lo..<hi])
        return String(out)
    }

    /// Python `str.split(sep, maxsplit)` / `rsplit`.
    static func split(_ u: [Unicode.Scalar], sep: String?, maxsplit: Int, fromRight: Bool = false) throws -> [String] {
        func str(_ s: ArraySlice<Unicode.Scalar>) -> String {
            var out = String.UnicodeScalarView()
            out.append(contentsOf: s)
            return String(out)
        }
        guard let sep else {
            // Runs of whitespace separate; leading and trailing whitespace yield nothing.
            var words: [ArraySlice<Unicode.Scalar>] = []
            var i = 0
            while i < u.count {
                while i < u.count, isPythonSpace(u[i]) { i += 1 }
                guard i < u.count else { break }
                if maxsplit >= 0 && words.count == maxsplit && !fromRight {
                    var end = u.count
                    while end > i, isPythonSpace(u[end - 1]) { end -= 1 }
                    words.append(u[i..<end])
                    break
                }
                let s = i
                while i < u.count, !isPythonSpace(u[i]) { i += 1 }
                words.append(u[s..<i])
            }
            return words.map(str)
        }
        let needle = Array(sep.unicodeScalars)
        guard !needle.isEmpty else { throw ValueError("empty separator") }
        var positions: [Int] = []
        var at = 0
        while let i = findScalars(u, needle, from: at) { positions.append(i); at = i + needle.count }
        if maxsplit >= 0 && positions.count > maxsplit {
            positions = fromRight ? Array(positions.suffix(maxsplit)) : Array(positions.prefix(maxsplit))
        }
        var parts: [String] = []
        var start = 0
        for p in positions {
            parts.append(str(u[start..<p]))
            start = p + needle.count
        }
        parts.append(str(u[start...]))
        return parts
    }

    private static func replace(_ u: [Unicode.Scalar], _ old: [Unicode.Scalar], _ new: String, count: Int) -> String {
        var out = String.UnicodeScalarView()
        var at = 0, n = 0
        if old.isEmpty {
            // Python inserts `new` between every character and at both ends.
            for c in u { if count < 0 || n < count { out.append(contentsOf: new.unicodeScalars); n += 1 }; out.append(c) }
            if count < 0 || n < count { out.append(contentsOf: new.unicodeScalars) }
            return String(out)
        }
        while count < 0 || n < count, let i = findScalars(u, old, from: at) {
            out.append(contentsOf: u[at..<i])
            out.append(contentsOf: new.unicodeScalars)
            at = i + old.count
            n += 1
        }
        out.append(contentsOf: u[at...])
        return String(out)
    }

    /// Python `str.title()`: a cased character after an uncased one is upper-cased, the rest lower.
    static func pythonTitle(_ u: [Unicode.Scalar]) -> String {
        var out = ""
        var previousCased = false
        for c in u {
            let cased = c.properties.isCased
            out += previousCased ? String(c).lowercased() : String(c).uppercased()
            previousCased = cased
        }
        return out
    }
}
