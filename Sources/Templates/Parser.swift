// Recursive-descent parser from tokens to `Node`s, with jinja2's precedence:
// conditional < or < and < not < comparisons (incl. `in`) < + - < ~ < * / // % < ** < unary - +
// < filters (`|`) and tests (`is`) < postfix (`.`, `[]`, `()`). So `x | trim + 'a'` is
// `(x | trim) + 'a'` and `not x is defined` is `not (x is defined)`.
// Reference: jinja2/parser.py. Statements outside the supported set are errors at their position.

/// Builds the tree of a tokenized template.
struct Parser {
    let name: String
    private let tokens: [Token]
    private var i = 0

    init(tokens: [Token], name: String) {
        self.tokens = tokens
        self.name = name
    }

    static func parse(_ source: String, name: String) throws -> [Node] {
        var p = Parser(tokens: try Lexer.tokenize(source, name: name), name: name)
        return try p.body(until: []).0
    }

    // MARK: Token helpers

    private var current: Token { tokens[i] }
    private func pos(_ t: Token) -> SourcePosition { SourcePosition(line: t.line, column: t.column) }

    func error(_ message: String, at index: Int? = nil, code: TemplateError.Code = .syntax) -> TemplateError {
        let t = tokens[min(index ?? i, tokens.count - 1)]
        return TemplateError(code, message, template: name, line: t.line, column: t.column)
    }

    private func describe(_ k: Token.Kind) -> String {
        switch k {
        case .text: return "text"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .name(let n): return "'\(n)'"
        case .string(let s): return "string \(pythonStringRepr(s))"
        case .int(let v): return "\(v)"
        case .float(let v): return "\(v)"
        case .op(let o): return "'\(o)'"
        case .eof: return "end of template"
        }
    }

    private func isOp(_ o: String) -> Bool { current.kind == .op(o) }
    private func isName(_ n: String) -> Bool { current.kind == .name(n) }

    private mutating func skipOp(_ o: String) -> Bool {
        if isOp(o) { i += 1; return true }
        return false
    }

    private mutating func skipName(_ n: String) -> Bool {
        if isName(n) { i += 1; return true }
        return false
    }

    private mutating func expect(_ k: Token.Kind) throws {
        guard current.kind == k else { throw error("expected \(describe(k)), got \(describe(current.kind))") }
        i += 1
    }

    private mutating func expectName() throws -> String {
        guard case .name(let n) = current.kind else { throw error("expected a name, got \(describe(current.kind))") }
        i += 1
        return n
    }

    // MARK: Statements

    /// Nodes up to a `{% name %}` whose name is in `until` (consumed up to the name; returned),
    /// or to the end of the template (nil).
    private mutating func body(until: Set<String>) throws -> ([Node], String?) {
        var nodes: [Node] = []
        while true {
            let t = current
            switch t.kind {
            case .eof:
                if let end = until.first(where: { $0.hasPrefix("end") }) { throw error("missing '{% \(end) %}'") }
                return (nodes, nil)
            case .text(let s):
                nodes.append(.text(s))
                i += 1
            case .variableBegin:
                i += 1
                let e = try expression()
                try expect(.variableEnd)
                nodes.append(.output(e, pos(t)))
            case .blockBegin:
                i += 1
                guard case .name(let keyword) = current.kind else {
                    throw error("expected a statement name, got \(describe(current.kind))")
                }
                if until.contains(keyword) {
                    i += 1
                    return (nodes, keyword)
                }
                nodes.append(try statement(keyword))
            default:
                throw error("unexpected \(describe(t.kind))")
            }
        }
    }

    private mutating func statement(_ keyword: String) throws -> Node {
        let start = i
        i += 1
        switch keyword {
        case "if": return try ifStatement()
        case "for": return try forStatement(at: pos(tokens[start]))
        case "set": return try setStatement(at: pos(tokens[start]))
        case "macro": return try macroStatement()
        case "break", "continue":
            try expect(.blockEnd)
            return keyword == "break" ? .breakLoop : .continueLoop
        case "generation":  // transformers' AssistantTracker: the body renders as is
            try expect(.blockEnd)
            let (nodes, _) = try body(until: ["endgeneration"])
            try expect(.blockEnd)
            return .ifChain([(.literal(.bool(true)), nodes)], otherwise: [])
        case _ where keyword.hasPrefix("end") || keyword == "elif" || keyword == "else":
            throw error("unexpected '{% \(keyword) %}' with no open block", at: start)
        default:
            throw error("unsupported statement '{% \(keyword) %}'", at: start, code: .unsupported)
        }
    }

    private mutating func ifStatement() throws -> Node {
        var branches: [(Expr, [Node])] = []
        var condition = try expression()
        while true {
            try expect(.blockEnd)
            let (nodes, end) = try body(until: ["elif", "else", "endif"])
            branches.append((condition, nodes))
            switch end {
            case "elif":
                condition = try expression()
            case "else":
                try expect(.blockEnd)
                let (rest, _) = try body(until: ["endif"])
                try expect(.blockEnd)
                return .ifChain(branches, otherwise: rest)
            default:
                try expect(.blockEnd)
                return .ifChain(branches, otherwise: [])
            }
        }
    }

    private mutating func forStatement(at p: SourcePosition) throws -> Node {
        let target = try assignTarget(allowAttribute: false)
        guard skipName("in") else { throw error("expected 'in' in a for loop, got \(describe(current.kind))") }
        let iterable = try tupleOrExpression(withConditional: false)
        var filter: Expr?
        if skipName("if") { filter = try expression() }
        if isName("recursive") { throw error("recursive loops are not supported", code: .unsupported) }
        try expect(.blockEnd)
        let (nodes, end) = try body(until: ["else", "endfor"])
        var otherwise: [Node] = []
        try expect(.blockEnd)
        if end == "else" {
            (otherwise, _) = try body(until: ["endfor"])
            try expect(.blockEnd)
        }
        return .forLoop(target, iterable: iterable, filter: filter, body: nodes, otherwise: otherwise, p)
    }

    private mutating func setStatement(at p: SourcePosition) throws -> Node {
        let target = try assignTarget(allowAttribute: true)
        if case .name(let n) = target, current.kind == .blockEnd {
            i += 1
            let (nodes, _) = try body(until: ["endset"])
            try expect(.blockEnd)
            return .setBlock(n, nodes)
        }
        try expect(.op("="))
        let value = try tupleOrExpression(withConditional: true)
        try expect(.blockEnd)
        return .set(target, value, p)
    }

    private mutating func macroStatement() throws -> Node {
        let name = try expectName()
        try expect(.op("("))
        var parameters: [(String, Expr?)] = []
        while !skipOp(")") {
            if !parameters.isEmpty { try expect(.op(",")) }
            if skipOp(")") { break }
            let p = try expectName()
            parameters.append((p, skipOp("=") ? try expression() : nil))
        }
        try expect(.blockEnd)
        let (nodes, _) = try body(until: ["endmacro"])
        try expect(.blockEnd)
        return .macro(name: name, parameters: parameters, body: nodes)
    }

    private mutating func assignTarget(allowAttribute: Bool) throws -> Target {
        let first = try expectName()
        if allowAttribute && skipOp(".") { return .attribute(first, try expectName()) }
        guard isOp(",") else { return .name(first) }
        var names = [first]
        while skipOp(",") {
            guard case .name = current.kind else { break }
            names.append(try expectName())
        }
        return .tuple(names)
    }

    // MARK: Expressions

    /// An expression, or a bare tuple `a, b`.
    private mutating func tupleOrExpression(withConditional: Bool) throws -> Expr {
        let first = withConditional ? try expression() : try orExpr()
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if current.kind == .blockEnd || current.kind == .variableEnd || isOp(")") || isName("if") { break }
            items.append(withConditional ? try expression() : try orExpr())
        }
        return .tuple(items)
    }

    mutating func expression() throws -> Expr {
        let value = try orExpr()
        guard skipName("if") else { return value }
        let cond = try orExpr()
        let otherwise = skipName("else") ? try expression() : nil
        return .conditional(then: value, cond: cond, otherwise: otherwise)
    }

    private mutating func orExpr() throws -> Expr {
        var left = try andExpr()
        while skipName("or") { left = .or(left, try andExpr()) }
        return left
    }

    private mutating func andExpr() throws -> Expr {
        var left = try notExpr()
        while skipName("and") { left = .and(left, try notExpr()) }
        return left
    }

    private mutating func notExpr() throws -> Expr {
        if skipName("not") { return .not(try notExpr()) }
        return try compare()
    }

    private mutating func compare() throws -> Expr {
        let p = pos(current)
        let left = try binary(level: 0)
        var ops: [(String, Expr)] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                i += 1
                ops.append((o, try binary(level: 0)))
            } else if skipName("in") {
                ops.append(("in", try binary(level: 0)))
            } else if isName("not"), tokens[i + 1].kind == .name("in") {
                i += 2
                ops.append(("notin", try binary(level: 0)))
            } else {
                break
            }
        }
        return ops.isEmpty ? left : .compare(left, ops, p)
    }

    /// Binary operator levels, loosest first.
    private static let levels: [[String]] = [["+", "-"], ["~"], ["*", "/", "//", "%"], ["**"]]

    private mutating func binary(level: Int) throws -> Expr {
        if level == Parser.levels.count { return try unary(withFilter: true) }
        var left = try binary(level: level + 1)
        while case .op(let o) = current.kind, Parser.levels[level].contains(o) {
            let p = pos(current)
            i += 1
            left = .binary(o, left, try binary(level: level + 1), p)
        }
        return left
    }

    private mutating func unary(withFilter: Bool) throws -> Expr {
        let p = pos(current)
        var node: Expr
        if skipOp("-") {
            node = .unary("-", try unary(withFilter: false), p)
        } else if skipOp("+") {
            node = .unary("+", try unary(withFilter: false), p)
        } else {
            node = try postfix(try primary())
        }
        return withFilter ? try filters(node) : node
    }

    private mutating func primary() throws -> Expr {
        let t = current
        i += 1
        switch t.kind {
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n, pos(t))
            }
        case .string(var s):
            while case .string(let more) = current.kind { s += more; i += 1 }
            return .literal(.string(s))
        case .int(let v): return .literal(.int(v))
        case .float(let v): return .literal(.double(v))
        case .op("("):
            if skipOp(")") { return .tuple([]) }
            let e = try tupleOrExpression(withConditional: true)
            try expect(.op(")"))
            return e
        case .op("["):
            var items: [Expr] = []
            while !skipOp("]") {
                if !items.isEmpty { try expect(.op(",")) }
                if skipOp("]") { break }
                items.append(try expression())
            }
            return .list(items)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            while !skipOp("}") {
                if !pairs.isEmpty { try expect(.op(",")) }
                if skipOp("}") { break }
                let k = try expression()
                try expect(.op(":"))
                pairs.append((k, try expression()))
            }
            return .dict(pairs)
        default:
            i -= 1
            throw error("unexpected \(describe(t.kind)) in an expression")
        }
    }

    private mutating func postfix(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            let p = pos(current)
            if skipOp(".") {
                guard case .name(let n) = current.kind else {
                    if case .int(let k) = current.kind { i += 1; node = .item(node, .literal(.int(k)), p); continue }
                    throw error("expected an attribute name after '.'")
                }
                i += 1
                node = .attribute(node, n, p)
            } else if skipOp("[") {
                node = try subscriptExpr(node, at: p)
            } else if isOp("(") {
                node = try call(node)
            } else {
                return node
            }
        }
    }

    private mutating func subscriptExpr(_ target: Expr, at p: SourcePosition) throws -> Expr {
        var parts: [Expr?] = [nil]
        var sliced = false
        while !skipOp("]") {
            if skipOp(":") {
                sliced = true
                parts.append(nil)
                guard parts.count <= 3 else { throw error("a slice takes at most three parts") }
            } else {
                guard parts[parts.count - 1] == nil else { throw error("expected ':' or ']' in a subscript") }
                parts[parts.count - 1] = try expression()
            }
        }
        if !sliced {
            guard let index = parts[0] else { throw error("empty subscript") }
            return .item(target, index, p)
        }
        while parts.count < 3 { parts.append(nil) }
        return .slice(target, parts[0], parts[1], parts[2], p)
    }

    private mutating func arguments() throws -> ([Expr], [(String, Expr)]) {
        try expect(.op("("))
        var args: [Expr] = [], kwargs: [(String, Expr)] = []
        while !skipOp(")") {
            if !(args.isEmpty && kwargs.isEmpty) { try expect(.op(",")) }
            if skipOp(")") { break }
            if case .name(let n) = current.kind, tokens[i + 1].kind == .op("=") {
                i += 2
                kwargs.append((n, try expression()))
            } else {
                if !kwargs.isEmpty { throw error("a positional argument after a keyword argument") }
                args.append(try expression())
            }
        }
        return (args, kwargs)
    }

    private mutating func call(_ callee: Expr) throws -> Expr {
        let p = pos(current)
        let (args, kwargs) = try arguments()
        return .call(callee, args, kwargs, p)
    }

    private mutating func filters(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            let p = pos(current)
            if skipOp("|") {
                let n = try expectName()
                var (args, kwargs): ([Expr], [(String, Expr)]) = ([], [])
                if isOp("(") { (args, kwargs) = try arguments() }
                node = .filter(node, n, args, kwargs, p)
            } else if skipName("is") {
                let negated = skipName("not")
                let n = try expectName()
                var args: [Expr] = []
                if isOp("(") {
                    args = try arguments().0
                } else if startsPrimary(), !isName("else"), !isName("or"), !isName("and") {
                    args = [try postfix(try primary())]
                }
                node = .test(node, n, args, negated: negated, p)
            } else if isOp("(") {
                node = try call(node)
            } else {
                return node
            }
        }
    }

    private func startsPrimary() -> Bool {
        switch current.kind {
        case .name, .string, .int, .float: return true
        case .op(let o): return o == "(" || o == "[" || o == "{"
        default: return false
        }
    }
}
