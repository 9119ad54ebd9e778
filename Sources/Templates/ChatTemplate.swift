// A parsed chat template and how it is rendered: the variables and globals transformers'
// `render_jinja_template` provides (`raise_exception`, `strftime_now`, plus jinja2's `namespace`,
// `range`, `dict`).

import Foundation

/// A Hugging Face chat template, parsed once and rendered per conversation.
public struct ChatTemplate: @unchecked Sendable {
    /// Names the template in error messages (a file, a model directory).
    public let name: String
    /// The template text as published.
    public let source: String
    private let nodes: [Node]

    /// Parses `source`; syntax errors and unsupported statements name `name` and line:column.
    public init(_ source: String, name: String) throws {
        self.name = name
        self.source = source
        nodes = try Parser.parse(source, name: name)
    }

    /// Renders with the template variables `variables` (`messages`, `tools`,
    /// `add_generation_prompt`, `bos_token`, ...). `now` is what `strftime_now` formats (default:
    /// the current time), in the local time zone as Python's `datetime.now()`.
    public func render(_ variables: [String: Value], now: Date? = nil) throws -> String {
        var globals = ChatTemplate.globals(now: now ?? Date())
        for (k, v) in variables { globals[k] = v }
        return try Renderer(name: name, globals: globals).render(nodes)
    }

    static func globals(now: Date) -> [String: Value] {
        [
            "raise_exception": .callable(Callable("raise_exception") { args, _ in
                throw TemplateError(.raised, args.first?.rendered ?? "", template: "")
            }),
            "strftime_now": .callable(Callable("strftime_now") { args, _ in
                guard case .string(let format)? = args.first else { throw ValueError("strftime_now expects a format string") }
                return .string(try strftime(format, now))
            }),
            "namespace": .callable(Callable("namespace") { args, kwargs in
                var d = OrderedDict()
                if case .dict(let initial)? = args.first { d = initial }
                for (k, v) in kwargs { d[k] = v }
                return .namespace(Namespace(d))
            }),
            "dict": .callable(Callable("dict") { _, kwargs in .dict(OrderedDict(kwargs)) }),
            "range": .callable(Callable("range") { args, _ in
                let n = try args.map { v -> Int in
                    guard let i = v.integer else { throw ValueError("range expects integers") }
                    return i
                }
                let (lo, hi, step) = n.count == 1 ? (0, n[0], 1) : (n[0], n[1], n.count > 2 ? n[2] : 1)
                guard step != 0, n.count >= 1 else { throw ValueError("range() arg 3 must not be zero") }
                return .list(stride(from: lo, to: hi, by: step).map { .int($0) })
            }),
        ]
    }
}

/// Python `datetime.strftime` for the directives chat templates use.
func strftime(_ format: String, _ date: Date) throws -> String {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone.current
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
    let (year, month, day) = (c.year ?? 1970, c.month ?? 1, c.day ?? 1)
    let (hour, minute, second) = (c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
    let weekday = ((c.weekday ?? 1) + 5) % 7  // Monday = 0
    let days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                  "November", "December"]
    func pad(_ n: Int, _ width: Int = 2) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    var out = ""
    var it = format.makeIterator()
    while let ch = it.next() {
        guard ch == "%" else { out.append(ch); continue }
        guard var d = it.next() else { out.append("%"); break }
        var noPad = false
        if d == "-", let next = it.next() { noPad = true; d = next }
        func num(_ n: Int, _ width: Int = 2) -> String { noPad ? String(n) : pad(n, width) }
        switch d {
        case "d": out += num(day)
        case "m": out += num(month)
        case "Y": out += String(year)
        case "y": out += num(year % 100)
        case "H": out += num(hour)
        case "I": out += num(hour % 12 == 0 ? 12 : hour % 12)
        case "M": out += num(minute)
        case "S": out += num(second)
        case "p": out += hour < 12 ? "AM" : "PM"
        case "b", "h": out += String(months[month - 1].prefix(3))
        case "B": out += months[month - 1]
        case "a": out += String(days[weekday].prefix(3))
        case "A": out += days[weekday]
        case "j": out += num(calendar.ordinality(of: .day, in: .year, for: date) ?? 1, 3)
        case "%": out += "%"
        default: throw ValueError("strftime_now: unsupported directive %\(d)")
        }
    }
    return out
}
