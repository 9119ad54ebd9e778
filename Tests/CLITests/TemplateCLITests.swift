// `rondo template` end to end: the oracle policy directory with each fixture chat template added
// renders every fixture case exactly as transformers does (acceptance 2 of issue 13).

import Foundation
import Templates
import Testing
import TestSupport

/// The fixture templates and cases (Tests/Fixtures/chat-templates/cases.json), as ordered JSON.
func chatTemplateFixture() throws -> [OrderedDict] {
    let file = Fixtures.oracle.deletingLastPathComponent().appendingPathComponent("chat-templates/cases.json")
    guard case .dict(let root) = try JSON.parse(Data(contentsOf: file), source: file.path),
          case .list(let templates)? = root["templates"] else { throw CocoaError(.fileReadCorruptFile) }
    return templates.compactMap { if case .dict(let d) = $0 { return d } else { return nil } }
}

extension Value {
    var stringValue: String? { if case .string(let s) = self { return s }; return nil }
}

@Suite struct TemplateCLITests {
    @Test func rendersEveryFixtureCaseThroughTheCLI() throws {
        var checked = 0
        for t in try chatTemplateFixture() {
            guard let source = t["template"]?.stringValue, case .list(let cases)? = t["cases"] else { continue }
            try withTemporaryDirectory { dir in
                let model = dir.appendingPathComponent("policy")
                try copyDirectory(Fixtures.policy, to: model)
                try source.write(to: model.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
                var lines: [String] = [], wanted: [(String, String)] = []
                for case .dict(let c) in cases where c["strftime_now_datetime"] == nil {  // "now" is not pinned here
                    var line = OrderedDict()
                    line["messages"] = c["messages"]
                    line["tools"] = c["tools"] ?? Value.none
                    line["add_generation_prompt"] = c["add_generation_prompt"]
                    if case .dict(let extra)? = c["extra"] { for (k, v) in extra.pairs { line[k] = v } }
                    lines.append(try JSON.text(.dict(line)))
                    if let e = c["expected"]?.stringValue { wanted.append(("text", e)) } else { wanted.append(("error", c["error"]?.stringValue ?? "")) }
                }
                let input = dir.appendingPathComponent("messages.jsonl")
                try (lines.joined(separator: "\n") + "\n").write(to: input, atomically: true, encoding: .utf8)
                let r = try runRondo(["template", "--model", model.path, "--messages", input.path])
                let anyError = wanted.contains { $0.0 == "error" }
                #expect(r.status == (anyError ? 1 : 0), "stderr: \(r.stderr)")
                let out = r.stdout.split(separator: "\n")
                #expect(out.count == wanted.count)
                for (line, (key, value)) in zip(out, wanted) {
                    guard case .dict(let o) = try JSON.parse(Data(line.utf8), source: "stdout") else { continue }
                    #expect(o.keys == [key] && o[key]?.stringValue == value, "\(t["name"]?.stringValue ?? ""): \(line)")
                    checked += 1
                }
            }
        }
        #expect(checked == 57)  // 58 cases less the one that formats the current date
    }

    @Test func readsStandardInputAndNeedsATemplate() throws {
        try withTemporaryDirectory { dir in
            let model = dir.appendingPathComponent("policy")
            try copyDirectory(Fixtures.policy, to: model)
            let none = try runRondo(["template", "--model", model.path], stdin: "{\"messages\": []}\n")
            #expect(none.status != 0 && none.stderr.contains("no chat template"), "stderr: \(none.stderr)")

            try "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
                .write(to: model.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
            let stdin = """
                {"messages": [{"role": "user", "content": "hi"}]}

                {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": false, "bos_token": "[B]"}
                """
            let r = try runRondo(["template", "--model", model.path], stdin: stdin)
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(r.stdout == "{\"text\": \"<|bos|><user>hi<assistant>\"}\n{\"text\": \"[B]<user>hi\"}\n")

            // continue_final_message (no generation prompt by default then) cuts after the final text.
            let cont = try runRondo(["template", "--model", model.path], stdin: """
                {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "The"}], "continue_final_message": true}
                """)
            #expect(cont.status == 0 && cont.stdout == "{\"text\": \"<|bos|><user>hi<assistant>The\"}\n", "\(cont.stdout) \(cont.stderr)")

            // U+2028 in a message is escaped in the output line (JSON-lines readers may split on it).
            let sep = try runRondo(["template", "--model", model.path], stdin: "{\"messages\": [{\"role\": \"user\", \"content\": \"a\u{2028}b\"}]}\n")
            #expect(sep.stdout == "{\"text\": \"<|bos|><user>a\\u2028b<assistant>\"}\n", "\(sep.stdout)")

            let bad = try runRondo(["template", "--model", model.path], stdin: "{\"messages\": []}\n{\"text\": 1}\n")
            #expect(bad.status != 0 && bad.stderr.contains("stdin:2") && bad.stderr.contains("\"messages\""), "stderr: \(bad.stderr)")
        }
    }

    @Test func generateRendersConversationalPrompts() throws {
        try withTemporaryDirectory { dir in
            let model = dir.appendingPathComponent("policy")
            try copyDirectory(Fixtures.policy, to: model)
            let conv = dir.appendingPathComponent("conv.jsonl"), ids = dir.appendingPathComponent("ids.jsonl")
            try "{\"prompt\": [{\"role\": \"user\", \"content\": \"what is 7*8?\"}]}\n".write(to: conv, atomically: true, encoding: .utf8)
            let args = ["generate", "--model", model.path, "--temperature", "0", "--max-new-tokens", "5"]
            let none = try runRondo(args + ["--prompts", conv.path])
            #expect(none.status != 0 && none.stderr.contains("conv.jsonl:1") && none.stderr.contains("chat template"), "stderr: \(none.stderr)")

            try "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
                .write(to: model.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
            let tokens = try runRondo(["tokenize", "--tokenizer", model.path], stdin: "{\"text\": \"<|bos|><user>what is 7*8?<assistant>\"}\n")
            try tokens.stdout.replacingOccurrences(of: "\"ids\"", with: "\"prompt_ids\"").write(to: ids, atomically: true, encoding: .utf8)
            let a = try runRondo(args + ["--prompts", conv.path]), b = try runRondo(args + ["--prompts", ids.path])
            #expect(a.status == 0 && b.status == 0, "stderr: \(a.stderr) \(b.stderr)")
            #expect(a.stdout == b.stdout && !a.stdout.isEmpty, "\(a.stdout) vs \(b.stdout)")
        }
    }
}
