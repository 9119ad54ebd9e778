// Finding a model directory's chat template and special tokens as transformers does.

import Foundation
import Templates
import Testing

@Suite struct ModelTemplateTests {
    func directory(_ files: [String: String], _ body: (URL) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rondo-template-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        try body(dir)
    }

    let messages: Value = .list([.dict(OrderedDict([("role", .string("user")), ("content", .string("hi"))]))])

    @Test func tokenizerConfigStringTemplateWithTokenObjects() throws {
        let config = """
            {"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false}, "eos_token": "</s>",
             "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"}
            """
        try directory(["tokenizer_config.json": config]) { dir in
            let t = try #require(try ModelTemplate.load(directory: dir))
            #expect(t.specialTokens == ["bos_token": "<s>", "eos_token": "</s>"])
            #expect(try t.render(messages: messages, addGenerationPrompt: true) == "<s>hi</s>")
            #expect(try t.render(messages: messages, addGenerationPrompt: true, ["eos_token": .string("|")]) == "<s>hi|")
        }
    }

    @Test func namedListUsesDefaultAndJinjaFileWins() throws {
        let config = """
            {"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ messages | length }}"}]}
            """
        try directory(["tokenizer_config.json": config]) { dir in
            #expect(try ModelTemplate.load(directory: dir)?.render(messages: messages, addGenerationPrompt: false) == "D1")
            try "J{{ add_generation_prompt }}".write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
            #expect(try ModelTemplate.load(directory: dir)?.render(messages: messages, addGenerationPrompt: false) == "JFalse")
        }
        try directory(["tokenizer_config.json": "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}]}"]) { dir in
            #expect(throws: TemplateError.self) { try ModelTemplate.load(directory: dir) }
        }
    }

    @Test func noTemplateIsNil() throws {
        try directory(["tokenizer_config.json": "{\"eos_token\": \"</s>\"}"]) { dir in
            let t = try ModelTemplate.load(directory: dir)
            #expect(t == nil)
        }
        try directory([:]) { dir in
            let t = try ModelTemplate.load(directory: dir)
            #expect(t == nil)
        }
    }

    @Test func syntaxErrorsNameTheFile() throws {
        try directory(["chat_template.jinja": "line one\n{% if x %}"]) { dir in
            do {
                _ = try ModelTemplate.load(directory: dir)
                Issue.record("expected an error")
            } catch let e as TemplateError {
                #expect("\(e)".contains("chat_template.jinja:2:11: missing '{% endif %}'"), "\(e)")
            }
        }
    }

    /// transformers' continue_final_message (expected strings from its algorithm run on jinja2 3.1.6).
    @Test func continueFinalMessageCutsAfterTheFinalText() throws {
        func message(_ role: String, _ content: Value) -> Value {
            .dict(OrderedDict([("role", .string(role)), ("content", content)]))
        }
        func render(_ source: String, _ final: Value) throws -> String {
            let t = ModelTemplate(template: try ChatTemplate(source, name: "t"))
            return try t.render(messages: .list([message("user", .string("Hi")), message("assistant", final)]),
                                addGenerationPrompt: false, continueFinalMessage: true)
        }
        let plain = "{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}"
        let trimmed = "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}</s>{% endfor %}"
        let parts = "{% for m in messages %}<{{ m.role }}>{% if m.content is string %}{{ m.content }}{% else %}{% for b in m.content %}{{ b.text }}{% endfor %}{% endif %}</s>{% endfor %}"
        #expect(try render(plain, .string("The answer is")) == "<user>Hi</s><assistant>The answer is")
        #expect(try render(trimmed, .string("The answer is ")) == "<user>Hi</s><assistant>The answer is")
        #expect(try render(plain, .string(" The answer ")) == "<user>Hi</s><assistant> The answer")
        #expect(try render(plain, .string("Hi")) == "<user>Hi</s><assistant>Hi")
        let blocks: Value = .list([.dict(OrderedDict([("type", .string("text")), ("text", .string("A"))])),
                                   .dict(OrderedDict([("type", .string("image"))])),
                                   .dict(OrderedDict([("type", .string("text")), ("text", .string("B "))]))])
        #expect(try render(parts, blocks) == "<user>Hi</s><assistant>AB ")
        #expect(throws: TemplateError.self) { try render("{% for m in messages %}{{ m.role }}{% endfor %}", .string("gone")) }

        // A TRL prompt ending with the assistant's message is continued, not given a generation prompt.
        let t = ModelTemplate(template: try ChatTemplate(plain + "{% if add_generation_prompt %}<assistant>{% endif %}", name: "t"))
        let line = #"{"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "The"}]}"#
        #expect(try t.renderPrompt(line: Data(line.utf8), source: "p") == "<user>Hi</s><assistant>The")
        let userLine = #"{"prompt": [{"role": "user", "content": "Hi"}]}"#
        #expect(try t.renderPrompt(line: Data(userLine.utf8), source: "p") == "<user>Hi</s><assistant>")
        let toolLine = #"{"prompt": [{"role": "tool", "content": "1"}]}"#
        #expect(throws: TemplateError.self) { try t.renderPrompt(line: Data(toolLine.utf8), source: "p") }
    }
}
