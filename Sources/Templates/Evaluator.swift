// Renders a parsed template. Scoping follows jinja2: `set` writes the innermost frame; every loop
// iteration gets a fresh frame (so a `set` in a loop body is gone after the loop and at the next
// iteration — hence `namespace()`); `if` opens no frame; a macro call sees the template's globals
// and top-level names plus its parameters.
// Reference: jinja2/compiler.py, jinja2/runtime.py (LoopContext, Macro), jinja2/sandbox.py.

import Foundation

/// A failure inside a filter, method or operator; the evaluator adds the position.
struct ValueError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// One rendering of a template.
final class Renderer {
    let name: String
    private var frames: [[String: Value]]

    private enum Flow { case normal, breakLoop, continueLoop }

    init(name: String, globals: [String: Value]) {
        self.name = name
        frames = [globals, [:]]
    }

    func render(_ nodes: [Node]) throws -> String {
        var out = ""
        _ = try render(nodes, into: &out)
        return out
    }

    private func fail(_ message: String, at p: SourcePosition?, code: TemplateError.Code = .runtime) -> TemplateError {
        TemplateError(code, message, template: name, line: p?.line ?? 0, column: p?.column ?? 0)
    }

    /// Runs `body`, turning a `ValueError` into a template error at `p`.
    private func at<T>(_ p: SourcePosition, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ValueError { throw fail(e.message, at: p) }
    }

    // MARK: Statements

    private func render(_ nodes: [Node], into out: inout String) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let s): out += s
            case .output(let e, let p):
                let v = try eval(e)
                if case .namespace = v { throw fail("cannot print a namespace", at: p) }
                out += v.rendered
            case .ifChain(let branches, let otherwise):
                let chosen = try branches.first { try eval($0.0).truthy }?.1 ?? otherwise
                let flow = try render(chosen, into: &out)
                if flow != .normal { return flow }
            case .forLoop(let target, let iterable, let filter, let body, let otherwise, let p):
                try forLoop(target, iterable, filter, body, otherwise, p, into: &out)
            case .set(let target, let e, let p):
                try assign(target, try eval(e), at: p)
            case .setBlock(let n, let body):
                var captured = ""
                _ = try render(body, into: &captured)
                frames[frames.count - 1][n] = .string(captured)
            case .macro(let n, let parameters, let body):
                frames[frames.count - 1][n] = macro(n, parameters, body)
            case .breakLoop: return .breakLoop
            case .continueLoop: return .continueLoop
            }
        }
        return .normal
    }

    private func assign(_ target: Target, _ value: Value, at p: SourcePosition) throws {
        switch target {
        case .name(let n):
            frames[frames.count - 1][n] = value
        case .tuple(let names):
            guard let items = value.iterated(), items.count == names.count else {
                throw fail("cannot unpack \(value.typeName) into \(names.count) names", at: p)
            }
            for (n, v) in zip(names, items) { frames[frames.count - 1][n] = v }
        case .attribute(let object, let attribute):
            guard case .namespace(let ns) = lookup(object) else {
                throw fail("cannot assign attribute on non-namespace object '\(object)'", at: p)
            }
            ns.attributes[attribute] = value
        }
    }

    private func forLoop(_ target: Target, _ iterable: Expr, _ filter: Expr?, _ body: [Node], _ otherwise: [Node],
                         _ p: SourcePosition, into out: inout String) throws {
        let source = try eval(iterable)
        guard var items = source.iterated() else { throw fail("'\(source.typeName)' object is not iterable", at: p) }
        if let filter {
            items = try items.filter { item in
                frames.append([:])
                defer { frames.removeLast() }
                try assign(target, item, at: p)
                return try eval(filter).truthy
            }
        }
        if items.isEmpty {
            _ = try render(otherwise, into: &out)
            return
        }
        for (k, item) in items.enumerated() {
            frames.append(["loop": loopValue(k, items)])
            defer { frames.removeLast() }
            try assign(target, item, at: p)
            if try render(body, into: &out) == .breakLoop { break }
        }
    }

    /// jinja2's LoopContext for iteration `k` of `items`.
    private func loopValue(_ k: Int, _ items: [Value]) -> Value {
        let n = items.count
        var d = OrderedDict()
        d["index"] = .int(k + 1)
        d["index0"] = .int(k)
        d["revindex"] = .int(n - k)
        d["revindex0"] = .int(n - k - 1)
        d["first"] = .bool(k == 0)
        d["last"] = .bool(k == n - 1)
        d["length"] = .int(n)
        d["depth"] = .int(1)
        d["depth0"] = .int(0)
        d["previtem"] = k > 0 ? items[k - 1] : .undefined("there is no previous item")
        d["nextitem"] = k < n - 1 ? items[k + 1] : .undefined("there is no next item")
        d["cycle"] = .callable(Callable("loop.cycle") { args, _ in
            guard !args.isEmpty else { throw ValueError("no items for cycling given") }
            return args[k % args.count]
        })
        return .dict(d)
    }

    private func macro(_ n: String, _ parameters: [(String, Expr?)], _ body: [Node]) -> Value {
        .callable(Callable(n) { [unowned self] args, kwargs in
            guard args.count <= parameters.count else {
                throw ValueError("macro '\(n)' takes not more than \(parameters.count) argument(s)")
            }
            var frame: [String: Value] = [:]
            for (k, (pn, dflt)) in parameters.enumerated() {
                if k < args.count {
                    frame[pn] = args[k]
                } else if let v = kwargs.first(where: { $0.0 == pn })?.1 {
                    frame[pn] = v
                } else {
                    frame[pn] = try dflt.map { try self.eval($0) } ?? .undefined("parameter '\(pn)' was not provided")
                }
            }
            for (k, _) in kwargs where !parameters.contains(where: { $0.0 == k }) {
                throw ValueError("macro '\(n)' takes no keyword argument '\(k)'")
            }
            let saved = self.frames
            self.frames = [saved[0], saved[1], frame]
            defer { self.frames = saved }
            return .string(try self.render(body))
        })
    }

    // MARK: Expressions

    private func lookup(_ n: String) -> Value {
        for frame in frames.reversed() { if let v = frame[n] { return v } }
        return .undefined("'\(n)' is undefined")
    }

    func eval(_ e: Expr) throws -> Value {
        switch e {
        case .literal(let v): return v
        case .name(let n, _): return lookup(n)
        case .list(let items): return .list(try items.map(eval))
        case .tuple(let items): return .tuple(try items.map(eval))
        case .dict(let pairs):
            var d = OrderedDict()
            for (k, v) in pairs {
                guard case .string(let key) = try eval(k) else {
                    throw fail("only string keys are supported in dict literals", at: nil, code: .unsupported)
                }
                d[key] = try eval(v)
            }
            return .dict(d)
        case .attribute(let o, let n, let p):
            let object = try eval(o)
            return try at(p) { try attribute(object, n) }
        case .item(let o, let k, let p):
            let object = try eval(o), key = try eval(k)
            return try at(p) { try item(object, key) }
        case .slice(let o, let a, let b, let c, let p):
            let object = try eval(o)
            let bounds = try [a, b, c].map { try $0.map(eval) }
            return try at(p) { try slice(object, bounds[0], bounds[1], bounds[2]) }
        case .call(let callee, let args, let kwargs, let p):
            return try call(try eval(callee), args, kwargs, at: p)
        case .filter(let o, let n, let args, let kwargs, let p):
            let v = try eval(o)
            let a = try args.map(eval), k = try kwargs.map { ($0.0, try eval($0.1)) }
            return try at(p) { try Filters.apply(n, v, a, k, evaluator: self) }
        case .test(let o, let n, let args, let negated, let p):
            let v = try eval(o)
            let a = try args.map(eval)
            let r = try at(p) { try Tests.apply(n, v, a) }
            return .bool(r != negated)
        case .unary(let op, let o, let p):
            let v = try eval(o)
            return try at(p) { try Operators.unary(op, v) }
        case .binary(let op, let l, let r, let p):
            let a = try eval(l), b = try eval(r)
            return try at(p) { try Operators.binary(op, a, b) }
        case .compare(let first, let ops, let p):
            return .bool(try compareChain(first, ops, at: p))
        case .and(let l, let r):
            let a = try eval(l)
            return a.truthy ? try eval(r) : a
        case .or(let l, let r):
            let a = try eval(l)
            return a.truthy ? a : try eval(r)
        case .not(let o): return .bool(!(try eval(o).truthy))
        case .conditional(let then, let cond, let otherwise):
            if try eval(cond).truthy { return try eval(then) }
            return try otherwise.map(eval) ?? .undefined("the inline if expression evaluated to false and no else section was defined")
        }
    }

    private func call(_ f: Value, _ args: [Expr], _ kwargs: [(String, Expr)], at p: SourcePosition) throws -> Value {
        let a = try args.map(eval), k = try kwargs.map { ($0.0, try eval($0.1)) }
        return try at(p) {
            guard case .callable(let c) = f else {
                if case .undefined(let why) = f { throw ValueError(why) }
                throw ValueError("'\(f.typeName)' object is not callable")
            }
            return try c.call(a, k)
        }
    }

    /// Python's chained comparison: `a < b < c` is `a < b and b < c`, each operand evaluated once.
    private func compareChain(_ first: Expr, _ ops: [(String, Expr)], at p: SourcePosition) throws -> Bool {
        var left = try eval(first)
        for (op, re) in ops {
            let right = try eval(re)
            guard try at(p, { try Operators.compare(op, left, right) }) else { return false }
            left = right
        }
        return true
    }

    /// `object.name`: a method of a str or dict, else (as jinja2's getattr) the dict key or
    /// namespace attribute; undefined if missing.
    func attribute(_ object: Value, _ n: String) throws -> Value {
        switch object {
        case .undefined(let why): throw ValueError(why)
        case .dict(let d):
            if let m = Methods.bound(object, n) { return m }
            return d[n] ?? .undefined("'dict object' has no attribute '\(n)'")
        case .namespace(let ns):
            return ns.attributes[n] ?? .undefined("'Namespace object' has no attribute '\(n)'")
        default:
            if let m = Methods.bound(object, n) { return m }
            return .undefined("'\(object.typeName) object' has no attribute '\(n)'")
        }
    }

    /// `object[key]`: a list or string index (negative from the end), a dict key; undefined if missing.
    func item(_ object: Value, _ key: Value) throws -> Value {
        switch (object, key) {
        case (.undefined(let why), _): throw ValueError(why)
        case (.list(let l), _), (.tuple(let l), _):
            guard let k = key.integer else { throw ValueError("\(object.typeName) indices must be integers, not \(key.typeName)") }
            let j = k < 0 ? k + l.count : k
            return l.indices.contains(j) ? l[j] : .undefined("list object has no element \(k)")
        case (.string(let s), _):
            guard let k = key.integer else { throw ValueError("string indices must be integers, not \(key.typeName)") }
            let u = Array(s.unicodeScalars)
            let j = k < 0 ? k + u.count : k
            return u.indices.contains(j) ? .string(String(u[j])) : .undefined("str object has no element \(k)")
        case (.dict(let d), .string(let k)):
            return d[k] ?? Methods.bound(object, k) ?? .undefined("'dict object' has no attribute '\(k)'")
        case (.namespace, .string(let k)):
            return try attribute(object, k)
        default:
            return .undefined("'\(object.typeName) object' has no attribute \(key.repr)")
        }
    }

    /// Python slicing `object[start:stop:step]` of a list or string.
    private func slice(_ object: Value, _ start: Value?, _ stop: Value?, _ step: Value?) throws -> Value {
        func int(_ v: Value?) throws -> Int? {
            guard let v, !(v.isUndefined), !(v.isNone) else { return nil }
            guard let i = v.integer else { throw ValueError("slice indices must be integers or None") }
            return i
        }
        let st = try int(step) ?? 1
        guard st != 0 else { throw ValueError("slice step cannot be zero") }
        let (a, b) = (try int(start), try int(stop))
        func indices(_ n: Int) -> [Int] {
            func clamp(_ x: Int?, _ dflt: Int, lo: Int, hi: Int) -> Int {
                guard var x else { return dflt }
                if x < 0 { x += n }
                return min(max(x, lo), hi)
            }
            if st > 0 {
                let lo = clamp(a, 0, lo: 0, hi: n), hi = clamp(b, n, lo: 0, hi: n)
                return Array(stride(from: lo, to: hi, by: st))
            }
            let lo = clamp(a, n - 1, lo: -1, hi: n - 1), hi = clamp(b, -1, lo: -1, hi: n - 1)
            return Array(stride(from: lo, to: hi, by: st))
        }
        switch object {
        case .list(let l): return .list(indices(l.count).map { l[$0] })
        case .tuple(let l): return .tuple(indices(l.count).map { l[$0] })
        case .string(let s):
            let u = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for k in indices(u.count) { out.append(u[k]) }
            return .string(String(out))
        case .undefined(let why): throw ValueError(why)
        default: throw ValueError("'\(object.typeName)' object is not subscriptable")
        }
    }
}

extension Value {
    var isNone: Bool { if case .none = self { return true }; return false }
}
