// The syntax tree of a template: statements (`Node`) and expressions (`Expr`), each with the
// position it came from so that run-time errors can name it. Mirrors jinja2/nodes.py for the
// subset chat templates use.

/// A 1-based line and column in the template source.
struct SourcePosition: Sendable {
    var line: Int
    var column: Int
}

/// An expression.
indirect enum Expr {
    case literal(Value)
    case name(String, SourcePosition)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    /// `a.b`
    case attribute(Expr, String, SourcePosition)
    /// `a[b]`
    case item(Expr, Expr, SourcePosition)
    /// `a[start:stop:step]`
    case slice(Expr, Expr?, Expr?, Expr?, SourcePosition)
    case call(Expr, [Expr], [(String, Expr)], SourcePosition)
    case filter(Expr, String, [Expr], [(String, Expr)], SourcePosition)
    /// `a is [not] test(args)`
    case test(Expr, String, [Expr], negated: Bool, SourcePosition)
    case unary(String, Expr, SourcePosition)
    case binary(String, Expr, Expr, SourcePosition)
    /// `a < b <= c ...` (Python chained comparison); ops include "in" and "notin".
    case compare(Expr, [(String, Expr)], SourcePosition)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case not(Expr)
    /// `a if cond else b` (no else: undefined).
    case conditional(then: Expr, cond: Expr, otherwise: Expr?)
}

/// The target of a `for` or `set`: a name, a tuple of names, or `ns.attr`.
enum Target {
    case name(String)
    case tuple([String])
    case attribute(String, String)
}

/// A statement or output.
indirect enum Node {
    case text(String)
    case output(Expr, SourcePosition)
    case ifChain([(Expr, [Node])], otherwise: [Node])
    case forLoop(Target, iterable: Expr, filter: Expr?, body: [Node], otherwise: [Node], SourcePosition)
    case set(Target, Expr, SourcePosition)
    case setBlock(String, [Node])
    case macro(name: String, parameters: [(String, Expr?)], body: [Node])
    case breakLoop, continueLoop
}
