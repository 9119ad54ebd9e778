// A model directory's chat template and special tokens, as transformers finds them:
// `chat_template.jinja` if present, else `tokenizer_config.json`'s "chat_template" (a string, or
// the named-list form [{"name": ..., "template": ...}] of which "default" is used); the special
// tokens (`bos_token`, `eos_token`, `unk_token`, `pad_token`) from `tokenizer_config.json`, each a
// string or an AddedToken object {"content": ...}. transformers passes them to every render.

import Foundation

/// The chat template of a model directory, with the variables transformers adds to each render.
public struct ModelTemplate: Sendable {
    /// The parsed template.
    public let template: ChatTemplate
    /// `bos_token`, `eos_token`, ... as the tokenizer has them.
    public let specialTokens: [String: String]

    /// A template with the special tokens every render receives.
    public init(template: ChatTemplate, specialTokens: [String: String] = [:]) {
        self.template = template
        self.specialTokens = specialTokens
    }

    /// The directory's template, or nil when it has none. Malformed files are errors naming them.
    public static func load(directory dir: URL) throws -> ModelTemplate? {
        let fm = FileManager.default
        let configURL = dir.appendingPathComponent("tokenizer_config.json")
        var config = OrderedDict()
        if fm.fileExists(atPath: configURL.path) {
            guard case .dict(let d) = try JSON.parse(try read(configURL), source: configURL.path) else {
                throw TemplateError(.loading, "expected a JSON object", template: configURL.path)
            }
            config = d
        }
        var tokens: [String: String] = [:]
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            switch config[key] {
            case .string(let s)?: tokens[key] = s
            case .dict(let t)?:
                guard case .string(let s)? = t["content"] else {
                    throw TemplateError(.loading, "\"\(key)\" is an object without a string \"content\"", template: configURL.path)
                }
                tokens[key] = s
            default: break
            }
        }
        let jinja = dir.appendingPathComponent("chat_template.jinja")
        if fm.fileExists(atPath: jinja.path) {
            let source = String(decoding: try read(jinja), as: UTF8.self)
            return ModelTemplate(template: try ChatTemplate(source, name: jinja.path), specialTokens: tokens)
        }
        let name = configURL.path + " chat_template"
        switch config["chat_template"] {
        case nil, .none?: return nil
        case .string(let s)?: return ModelTemplate(template: try ChatTemplate(s, name: name), specialTokens: tokens)
        case .list(let named)?:
            for item in named {
                guard case .dict(let d) = item, case .string(let n)? = d["name"], case .string(let s)? = d["template"] else {
                    throw TemplateError(.loading, "\"chat_template\" list items need \"name\" and \"template\" strings",
                                        template: configURL.path)
                }
                if n == "default" {
                    return ModelTemplate(template: try ChatTemplate(s, name: name + "[default]"), specialTokens: tokens)
                }
            }
            throw TemplateError(.loading, "\"chat_template\" lists named templates but none is named \"default\"",
                                template: configURL.path)
        default:
            throw TemplateError(.loading, "\"chat_template\" must be a string or a list of {\"name\", \"template\"}",
                                template: configURL.path)
        }
    }

    private static func read(_ url: URL) throws -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw TemplateError(.loading, "cannot read (\(error.localizedDescription))", template: url.path)
        }
    }

    /// The variables of a render: the special tokens, `tools: none`, `documents: none`,
    /// `add_generation_prompt`, then `variables` (which override all of these).
    public func variables(messages: Value, addGenerationPrompt: Bool, _ variables: [String: Value] = [:]) -> [String: Value] {
        var v: [String: Value] = ["messages": messages, "tools": .none, "documents": .none,
                                  "add_generation_prompt": .bool(addGenerationPrompt)]
        for (k, s) in specialTokens { v[k] = .string(s) }
        for (k, x) in variables { v[k] = x }
        return v
    }

    /// `apply_chat_template(messages, tokenize=False, add_generation_prompt=...,
    /// continue_final_message=...)`.
    public func render(messages: Value, addGenerationPrompt: Bool, continueFinalMessage: Bool = false,
                       _ extra: [String: Value] = [:], now: Date? = nil) throws -> String {
        if continueFinalMessage && addGenerationPrompt {
            throw TemplateError(.runtime, "continue_final_message and add_generation_prompt are not compatible", template: template.name)
        }
        let text = try template.render(variables(messages: messages, addGenerationPrompt: addGenerationPrompt, extra), now: now)
        return continueFinalMessage ? try cutAfterFinalMessage(text, messages) : text
    }

    /// transformers' continue_final_message: the rendering cut right after the final message's
    /// text (its last text block), so that generation continues it.
    private func cutAfterFinalMessage(_ rendered: String, _ messages: Value) throws -> String {
        func fail(_ m: String) -> TemplateError { TemplateError(.runtime, "continue_final_message is set but \(m)", template: template.name) }
        guard case .list(let list) = messages, case .dict(let last)? = list.last else { throw fail("there is no final message") }
        var final: String?
        switch last["content"] {
        case .string(let s)?: final = s
        case .list(let blocks)?:
            for case .dict(let b) in blocks.reversed() { if case .string(let t)? = b["text"] { final = t; break } }
        default: break
        }
        guard let final else { throw fail("we could not find any text to continue in the final message!") }
        let r = Array(rendered.unicodeScalars), f = Array(final.unicodeScalars)
        let stripped = Array(Methods.strip(f, chars: nil).unicodeScalars)
        let lstripped = Methods.strip(f, chars: nil, right: false).unicodeScalars.count
        // The last occurrence of the stripped text (Python `rindex`).
        var at = -1, from = 0
        while let i = findScalars(r, stripped, from: from) { at = i; from = i + 1 }
        guard at >= 0 else {
            throw fail("the final message does not appear in the chat after applying the chat template!")
        }
        let end = at + lstripped <= r.count && r[at..<(at + lstripped)].elementsEqual(f) ? at + lstripped : at + stripped.count
        var out = String.UnicodeScalarView()
        out.append(contentsOf: r[..<end])
        return String(out)
    }

    /// A JSON line's conversational `"prompt"` (TRL's prompt-only form, a list of messages)
    /// rendered as TRL does — with the generation prompt after a user message, continuing a final
    /// assistant message — with the line's `"tools"`; `source` names the line.
    public func renderPrompt(line: Data, source: String) throws -> String {
        guard case .dict(let obj) = try JSON.parse(line, source: source), case .list(let messages)? = obj["prompt"],
              !messages.isEmpty else {
            throw TemplateError(.loading, "\"prompt\" must be a non-empty list of chat messages", template: source)
        }
        let continueFinal = try ModelTemplate.continuesFinalMessage(messages, source: source)
        return try render(messages: .list(messages), addGenerationPrompt: !continueFinal, continueFinalMessage: continueFinal,
                          obj["tools"].map { ["tools": $0] } ?? [:])
    }

    /// TRL's rule for a prompt: a final `user` message gets the generation prompt, a final
    /// `assistant` message is continued; any other final role is an error.
    public static func continuesFinalMessage(_ prompt: [Value], source: String) throws -> Bool {
        guard case .dict(let d)? = prompt.last, case .string(let role)? = d["role"] else {
            throw TemplateError(.loading, "the last prompt message needs a string \"role\"", template: source)
        }
        switch role {
        case "user": return false
        case "assistant": return true
        default:
            throw TemplateError(.loading, "invalid role \"\(role)\" in the last prompt message; TRL needs \"user\" (or \"assistant\", which is continued)",
                                template: source)
        }
    }
}
