// TRL's conversational data forms, rendered to text with the model's chat template as TRL's
// `apply_chat_template` (trl/data_utils.py) does:
//   {"messages": [...]}                         SFT: the last message must be the assistant's;
//                                               prompt = messages[:-1] with the generation prompt,
//                                               completion = the rest of the whole conversation
//   {"prompt": [...]}                           rendered with add_generation_prompt after a final user
//                                               message; a final assistant message is continued
//   {"prompt": [...], "completion": [...]}      completion = render(prompt + completion) minus the
//   {"prompt": [...], "chosen": [...], ...}     rendered prompt (which must be its prefix)
//   {"chosen": [...], "rejected": [...]}        each rendered whole (implicit prompt)
// A "tools" key of the line is passed to the template. Object keys keep their order (tojson).

import Foundation
import Model
import Templates

/// Rendering of conversational examples.
enum Conversation {
    static let fields = ["messages", "prompt", "completion", "chosen", "rejected"]

    /// True when any of the example's data fields is a list (of chat messages).
    static func isConversational(_ obj: [String: JSONValue]) -> Bool {
        fields.contains { obj[$0]?.array != nil }
    }

    /// The text of each conversational field of `line` (keys of `fields`; "messages" becomes
    /// "prompt" and "completion").
    static func render(_ line: Data, template: ModelTemplate, at ctx: TrainingData.LineContext) throws -> [String: String] {
        guard case .dict(let obj) = try JSON.parse(line, source: ctx.location) else {
            throw ctx.fail("expected a JSON object")
        }
        var extra: [String: Value] = [:]
        if let tools = obj["tools"] { extra["tools"] = tools }
        func messages(_ key: String) throws -> [Value]? {
            guard let v = obj[key] else { return nil }
            guard case .list(let l) = v, !l.isEmpty else { throw ctx.fail("\"\(key)\" must be a non-empty list of chat messages") }
            for (i, m) in l.enumerated() {
                guard case .dict(let d) = m, case .string? = d["role"] else {
                    throw ctx.fail("\"\(key)\"[\(i)] must be a message object with a string \"role\"")
                }
            }
            return l
        }
        func text(_ m: [Value], generationPrompt: Bool, continueFinal: Bool = false) throws -> String {
            do {
                return try template.render(messages: .list(m), addGenerationPrompt: generationPrompt,
                                           continueFinalMessage: continueFinal, extra)
            } catch {
                throw ctx.fail("chat template: \(error)")
            }
        }
        func role(_ m: Value) -> String { if case .dict(let d) = m, case .string(let r)? = d["role"] { return r } else { return "" } }
        var out: [String: String] = [:]
        if let all = try messages("messages") {
            guard role(all[all.count - 1]) == "assistant", all.count > 1 else {
                throw ctx.fail("\"messages\" must end with an assistant message after at least one other (the completion to learn)")
            }
            let p = try text(Array(all.dropLast()), generationPrompt: true)
            out["prompt"] = p
            out["completion"] = try suffix(of: try text(all, generationPrompt: false), after: p, "messages", ctx)
            return out
        }
        if let prompt = try messages("prompt") {
            let continueFinal: Bool
            do { continueFinal = try ModelTemplate.continuesFinalMessage(prompt, source: ctx.location) } catch {
                throw ctx.fail("\"prompt\": \((error as? TemplateError)?.message ?? "\(error)")")
            }
            let p = try text(prompt, generationPrompt: !continueFinal, continueFinal: continueFinal)
            out["prompt"] = p
            for key in ["completion", "chosen", "rejected"] {
                guard let m = try messages(key) else { continue }
                out[key] = try suffix(of: try text(prompt + m, generationPrompt: false), after: p, key, ctx)
            }
        } else {
            for key in ["chosen", "rejected", "completion"] {
                if let m = try messages(key) { out[key] = try text(m, generationPrompt: false) }
            }
        }
        return out
    }

    /// `whole` without its prefix `prefix` (code points, as Python slices).
    private static func suffix(of whole: String, after prefix: String, _ key: String,
                               _ ctx: TrainingData.LineContext) throws -> String {
        guard whole.unicodeScalars.starts(with: prefix.unicodeScalars) else {
            throw ctx.fail("the chat template applied to the prompt + \(key) does not start with the template applied to the prompt alone; this template cannot split prompt and completion")
        }
        var rest = String.UnicodeScalarView()
        rest.append(contentsOf: whole.unicodeScalars.dropFirst(prefix.unicodeScalars.count))
        return String(rest)
    }
}
