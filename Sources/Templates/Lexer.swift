// Splits a template into text and tag tokens the way jinja2 3.1's lexer does with the environment
// transformers builds (`trim_blocks=True`, `lstrip_blocks=True`, `keep_trailing_newline=False`):
//   - newlines are normalised to "\n" and one trailing newline of the source is dropped;
//   - `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all after it;
//   - trim_blocks: one "\n" right after `%}` or `#}` is dropped (not after `}}`);
//   - lstrip_blocks: spaces and tabs between a line start and `{%` or `{#` are dropped;
//   - `+` after an opening or before a closing delimiter turns lstrip / trim off for that tag.
// Reference: jinja2/lexer.py (`Lexer.tokeniter`, the root and block rules).

/// One token, with its 1-based position in the template.
struct Token {
    enum Kind: Equatable {
        case text(String)
        case blockBegin, blockEnd, variableBegin, variableEnd
        case name(String)
        case string(String)
        case int(Int)
        case float(Double)
        case op(String)
        case eof
    }
    var kind: Kind
    var line: Int
    var column: Int
}

/// Tokenizes template source; errors carry the template's name and position.
struct Lexer {
    let name: String
    private let src: [Unicode.Scalar]
    /// Index in `src` where each line starts (for positions).
    private let lineStarts: [Int]
    private var pos = 0
    private var tokens: [Token] = []
    /// True when the previous tag's match ended with a newline (or at the start): lstrip_blocks
    /// then applies even when the text before the next tag has no newline.
    private var lineStarting = true

    init(_ source: String, name: String) {
        self.name = name
        var normalized = source.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        if normalized.hasSuffix("\n") { normalized.removeLast() }
        let scalars = Array(normalized.unicodeScalars)
        src = scalars
        lineStarts = [0] + scalars.indices.filter { scalars[$0] == "\n" }.map { $0 + 1 }
    }

    /// All tokens, ending with `.eof`.
    static func tokenize(_ source: String, name: String) throws -> [Token] {
        var lexer = Lexer(source, name: name)
        try lexer.run()
        return lexer.tokens
    }

    private func position(_ index: Int) -> (line: Int, column: Int) {
        // The last line start ≤ index (binary search).
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return (lo + 1, index - lineStarts[lo] + 1)
    }

    private func error(_ message: String, at index: Int) -> TemplateError {
        let (l, c) = position(index)
        return TemplateError(.syntax, message, template: name, line: l, column: c)
    }

    private func at(_ i: Int, _ s: String) -> Bool {
        var j = i
        for u in s.unicodeScalars {
            guard j < src.count, src[j] == u else { return false }
            j += 1
        }
        return true
    }

    private mutating func emit(_ kind: Token.Kind, at index: Int) {
        let (l, c) = position(index)
        tokens.append(Token(kind: kind, line: l, column: c))
    }

    private mutating func run() throws {
        while pos < src.count {
            guard let open = nextOpening(from: pos) else {
                emit(.text(String(String.UnicodeScalarView(src[pos...]))), at: pos)
                pos = src.count
                break
            }
            var text = Array(src[pos..<open])
            let kind = src[open + 1]  // "{", "%" or "#"
            let modifier = open + 2 < src.count ? src[open + 2] : " "
            if modifier == "-" {
                while let last = text.last, isPythonSpace(last) { text.removeLast() }
            } else if modifier != "+" && kind != "{" {
                // lstrip_blocks: drop the line's leading spaces/tabs when only they precede the tag.
                let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                if lineStart > 0 || lineStarting,
                   text[lineStart...].allSatisfy({ $0 == " " || $0 == "\t" }) {
                    text.removeSubrange(lineStart...)
                }
            }
            if !text.isEmpty { emit(.text(String(String.UnicodeScalarView(text))), at: pos) }
            pos = open + 2 + (modifier == "-" || modifier == "+" ? 1 : 0)
            switch kind {
            case "#": try skipComment(start: open)
            case "%":
                emit(.blockBegin, at: open)
                try tag(close: "%", start: open)
            default:
                emit(.variableBegin, at: open)
                try tag(close: "}", start: open)
            }
        }
        emit(.eof, at: src.count)
    }

    private func nextOpening(from start: Int) -> Int? {
        var i = start
        while i + 1 < src.count {
            if src[i] == "{", src[i + 1] == "{" || src[i + 1] == "%" || src[i + 1] == "#" { return i }
            i += 1
        }
        return nil
    }

    /// After a closing delimiter at `pos`: `-` strips all following whitespace, `+` nothing, and
    /// block and comment tags otherwise drop one newline (trim_blocks).
    private mutating func afterClose(modifier: Unicode.Scalar?, isBlock: Bool) {
        let before = pos
        if modifier == "-" {
            while pos < src.count, isPythonSpace(src[pos]) { pos += 1 }
        } else if modifier != "+" && isBlock && pos < src.count && src[pos] == "\n" {
            pos += 1
        }
        lineStarting = pos > before ? src[pos - 1] == "\n" : false
    }

    private mutating func skipComment(start: Int) throws {
        while pos + 1 < src.count {
            if src[pos] == "#" && src[pos + 1] == "}" {
                let modifier = pos > 0 && (src[pos - 1] == "-" || src[pos - 1] == "+") ? src[pos - 1] : nil
                pos += 2
                afterClose(modifier: modifier, isBlock: true)
                return
            }
            pos += 1
        }
        throw error("unclosed comment: missing '#}'", at: start)
    }

    /// Tokens inside `{% ... %}` (close "%") or `{{ ... }}` (close "}") up to and including the end.
    private mutating func tag(close: Unicode.Scalar, start: Int) throws {
        let closer = String(close) + "}"
        var depth = 0  // open brackets: `}}` inside a dict literal is not the end
        while true {
            while pos < src.count, isPythonSpace(src[pos]) { pos += 1 }
            guard pos < src.count else {
                throw error("unclosed tag: missing '\(closer)'", at: start)
            }
            for m in ["-", "+", ""] where depth == 0 && at(pos, m + closer) {
                pos += m.unicodeScalars.count + 2
                emit(close == "%" ? .blockEnd : .variableEnd, at: pos - 2)
                afterClose(modifier: m.unicodeScalars.first, isBlock: close == "%")
                return
            }
            let c = src[pos]
            if c == "'" || c == "\"" {
                try stringLiteral(quote: c)
            } else if c.properties.isAlphabetic || c == "_" {
                let s = pos
                while pos < src.count, src[pos].properties.isAlphabetic || src[pos] == "_" || ("0"..."9").contains(src[pos]) {
                    pos += 1
                }
                emit(.name(String(String.UnicodeScalarView(src[s..<pos]))), at: s)
            } else if ("0"..."9").contains(c) {
                try number()
            } else {
                let s = pos
                guard let op = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")",
                                "[", "]", "{", "}", ".", ",", ":", "|", ";"].first(where: { at(pos, $0) }) else {
                    throw error("unexpected character '\(c)'", at: pos)
                }
                if op == "(" || op == "[" || op == "{" { depth += 1 }
                if op == ")" || op == "]" || op == "}" { depth -= 1 }
                pos += op.unicodeScalars.count
                emit(.op(op), at: s)
            }
        }
    }

    private mutating func number() throws {
        let s = pos
        func digits() { while pos < src.count, ("0"..."9").contains(src[pos]) || src[pos] == "_" { pos += 1 } }
        digits()
        var isFloat = false
        if pos + 1 < src.count, src[pos] == ".", ("0"..."9").contains(src[pos + 1]) {
            isFloat = true
            pos += 1
            digits()
        }
        if pos < src.count, src[pos] == "e" || src[pos] == "E" {
            var j = pos + 1
            if j < src.count, src[j] == "+" || src[j] == "-" { j += 1 }
            if j < src.count, ("0"..."9").contains(src[j]) {
                isFloat = true
                pos = j
                digits()
            }
        }
        let text = String(String.UnicodeScalarView(src[s..<pos])).replacingOccurrences(of: "_", with: "")
        if isFloat, let d = Double(text) {
            emit(.float(d), at: s)
        } else if let i = Int(text) {
            emit(.int(i), at: s)
        } else {
            throw error("bad number '\(text)'", at: s)
        }
    }

    /// A quoted literal with Python's escapes (`\n`, `\t`, `\\`, `\'`, `\"`, `\xHH`, `\uHHHH`, ...).
    private mutating func stringLiteral(quote: Unicode.Scalar) throws {
        let s = pos
        pos += 1
        var out = String.UnicodeScalarView()
        while pos < src.count, src[pos] != quote {
            if src[pos] == "\\", pos + 1 < src.count {
                pos += 1
                let e = src[pos]
                pos += 1
                switch e {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "0": out.append("\0")
                case "a": out.append("\u{07}")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "v": out.append("\u{0B}")
                case "\\", "'", "\"": out.append(e)
                case "\n": break
                case "x", "u", "U":
                    let n = e == "x" ? 2 : e == "u" ? 4 : 8
                    guard pos + n <= src.count,
                          let v = UInt32(String(String.UnicodeScalarView(src[pos..<(pos + n)])), radix: 16),
                          let u = Unicode.Scalar(v) else {
                        throw error("bad \\\(e) escape in a string literal", at: pos - 2)
                    }
                    out.append(u)
                    pos += n
                default:
                    out.append("\\")
                    out.append(e)
                }
            } else {
                out.append(src[pos])
                pos += 1
            }
        }
        guard pos < src.count else { throw error("unterminated string literal", at: s) }
        pos += 1
        emit(.string(String(out)), at: s)
    }
}
