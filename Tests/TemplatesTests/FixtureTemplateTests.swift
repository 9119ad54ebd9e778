// Every case of Tests/Fixtures/chat-templates/cases.json (7 real chat templates, 58 cases rendered
// by transformers 5.24 / jinja2 3.1.6) renders to exactly the expected string, or raises exactly
// the expected message. The variables follow the fixture README's render contract.

import Foundation
import Templates
import Testing

/// `Tests/Fixtures/chat-templates`.
let chatTemplateFixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/chat-templates", isDirectory: true)

/// One fixture case, ready to render.
struct FixtureCase: CustomStringConvertible {
    var template: String
    var templateName: String
    var name: String
    var variables: [String: Value]
    var now: Date?
    var expected: String?
    var error: String?
    var description: String { "\(templateName)/\(name)" }
}

func loadFixtureCases() throws -> [FixtureCase] {
    let file = chatTemplateFixtures.appendingPathComponent("cases.json")
    let root = try JSON.parse(Data(contentsOf: file), source: file.path)
    guard case .dict(let r) = root, case .list(let templates)? = r["templates"] else { throw FixtureFormat() }
    var out: [FixtureCase] = []
    for t in templates {
        guard case .dict(let td) = t, case .string(let source)? = td["template"], case .string(let tname)? = td["name"],
              case .list(let cases)? = td["cases"] else { throw FixtureFormat() }
        for c in cases {
            guard case .dict(let cd) = c, case .string(let cname)? = cd["name"] else { throw FixtureFormat() }
            var vars: [String: Value] = [
                "messages": cd["messages"] ?? .list([]),
                "tools": cd["tools"] ?? .none,
                "documents": .none,
                "add_generation_prompt": cd["add_generation_prompt"] ?? .bool(false),
            ]
            if case .dict(let extra)? = cd["extra"] { for (k, v) in extra.pairs { vars[k] = v } }
            var now: Date?
            if case .string(let iso)? = cd["strftime_now_datetime"] { now = try localDate(iso) }
            var expected: String?, error: String?
            if case .string(let e)? = cd["expected"] { expected = e }
            if case .string(let e)? = cd["error"] { error = e }
            out.append(FixtureCase(template: source, templateName: tname, name: cname, variables: vars, now: now,
                                   expected: expected, error: error))
        }
    }
    return out
}

struct FixtureFormat: Error {}

/// A naive ISO date-time ("2025-03-05T14:07:09") as a Date in the local time zone.
func localDate(_ iso: String) throws -> Date {
    let parts = iso.split(whereSeparator: { "-T:".contains($0) }).compactMap { Int($0) }
    guard parts.count == 6 else { throw FixtureFormat() }
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone.current
    let c = DateComponents(year: parts[0], month: parts[1], day: parts[2], hour: parts[3], minute: parts[4], second: parts[5])
    guard let d = calendar.date(from: c) else { throw FixtureFormat() }
    return d
}

@Suite struct FixtureTemplateTests {
    @Test func fixtureHasEveryCase() throws {
        let cases = try loadFixtureCases()
        #expect(cases.count == 58)
        #expect(Set(cases.map(\.templateName)).count == 7)
        #expect(cases.filter { $0.error != nil }.count == 6)
    }

    @Test func everyCaseRendersExactly() throws {
        var passed = 0
        for c in try loadFixtureCases() {
            let template = try ChatTemplate(c.template, name: c.templateName)
            do {
                let text = try template.render(c.variables, now: c.now)
                #expect(c.error == nil, "\(c): rendered but transformers raises \(c.error ?? "")")
                #expect(text == c.expected, "\(c): got \(text.debugDescription), want \((c.expected ?? "").debugDescription)")
                if text == c.expected { passed += 1 }
            } catch let e as TemplateError {
                #expect(e.code == .raised && e.message == c.error, "\(c): \(e)")
                if e.code == .raised && e.message == c.error { passed += 1 }
            }
        }
        #expect(passed == 58)
    }
}
