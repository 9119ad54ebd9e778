// Training data in TRL's JSON-lines conventions, read and validated before any work starts;
// every error names the file and line.
//
//   preference   {"prompt", "chosen", "rejected"}      DPO (TRL explicit-prompt preference format)
//   completion   {"prompt", "completion"}               SFT (TRL prompt–completion format)
//   prompt-only  {"prompt"}                             sampling / online training
//   pairs        {"chosen", "rejected"} [+ "prompt"]    reward models: whole sequences, optionally
//                                                       after a shared prompt
// Each text field may instead hold token ids: `prompt_ids`, `chosen_ids`, `rejected_ids`,
// `completion_ids`. Tokenisation follows TRL: the prompt is tokenised alone and the completion
// tokenised alone and appended, and EOS is appended to a completion / chosen / rejected TEXT that
// does not already end with it. Text is encoded as HF `encode(text, add_special_tokens=False)`:
// special tokens written in the text (a BOS at the start of the prompt) are recognised, none are
// added. Token-id fields are used exactly as given (no EOS is added: a sampled response cut at a
// length limit must stay unterminated).
// Any of these fields (and SFT's {"messages"}) may instead hold TRL's conversational form, a list
// of chat messages; the line is then rendered with the model's chat template first
// (Conversations.swift).

import Foundation
import Model
import Templates

/// Turns text into token ids (the model's tokenizer) and knows its EOS id and chat template.
public struct TextEncoder {
    public let encode: (String) throws -> [Int32]
    public let eos: Int32?
    /// The model's chat template, for conversational data (nil: the model has none).
    public let chatTemplate: () throws -> ModelTemplate?

    public init(eos: Int32?, chatTemplate: @escaping () throws -> ModelTemplate? = { nil },
                encode: @escaping (String) throws -> [Int32]) {
        self.encode = encode
        self.eos = eos
        self.chatTemplate = chatTemplate
    }
}

/// A prompt with a preferred and a dispreferred completion.
public struct PreferenceExample: Sendable, Equatable {
    public var prompt: [Int32], chosen: [Int32], rejected: [Int32]
    /// 1-based line in the data file.
    public var line: Int
    public init(prompt: [Int32], chosen: [Int32], rejected: [Int32], line: Int = 0) {
        self.prompt = prompt; self.chosen = chosen; self.rejected = rejected; self.line = line
    }
}

/// A prompt and the completion to imitate.
public struct CompletionExample: Sendable, Equatable {
    public var prompt: [Int32], completion: [Int32]
    public var line: Int
    public init(prompt: [Int32], completion: [Int32], line: Int = 0) {
        self.prompt = prompt; self.completion = completion; self.line = line
    }
}

/// A prompt alone.
public struct PromptExample: Sendable, Equatable {
    public var prompt: [Int32]
    public var line: Int
    public init(prompt: [Int32], line: Int = 0) { self.prompt = prompt; self.line = line }
}

/// Two whole sequences, the first preferred (the shared prompt, if any, already prepended).
public struct PairExample: Sendable, Equatable {
    public var chosen: [Int32], rejected: [Int32]
    public var line: Int
    public init(chosen: [Int32], rejected: [Int32], line: Int = 0) {
        self.chosen = chosen; self.rejected = rejected; self.line = line
    }
}

/// Readers of the JSON-lines formats above.
public enum TrainingData {
    /// Reads `{"prompt", "chosen", "rejected"}` lines (or their `_ids` forms).
    public static func readPreferences(_ url: URL, vocab: Int, encoder: TextEncoder?) throws -> [PreferenceExample] {
        try readLines(url, encoder: encoder) { obj, fields in
            let prompt = try fields.ids("prompt", obj, encoder: encoder, completion: false)
            let chosen = try fields.ids("chosen", obj, encoder: encoder, completion: true)
            let rejected = try fields.ids("rejected", obj, encoder: encoder, completion: true)
            try fields.check(prompt: prompt, "prompt")
            try fields.check(nonEmpty: chosen, "chosen"); try fields.check(nonEmpty: rejected, "rejected")
            try fields.check(vocab: vocab, prompt + chosen + rejected)
            return PreferenceExample(prompt: prompt, chosen: chosen, rejected: rejected, line: fields.line)
        }
    }

    /// Reads `{"prompt", "completion"}` lines (or their `_ids` forms).
    public static func readCompletions(_ url: URL, vocab: Int, encoder: TextEncoder?) throws -> [CompletionExample] {
        try readLines(url, encoder: encoder) { obj, fields in
            let prompt = try fields.ids("prompt", obj, encoder: encoder, completion: false)
            let completion = try fields.ids("completion", obj, encoder: encoder, completion: true)
            try fields.check(prompt: prompt, "prompt")
            try fields.check(nonEmpty: completion, "completion")
            try fields.check(vocab: vocab, prompt + completion)
            return CompletionExample(prompt: prompt, completion: completion, line: fields.line)
        }
    }

    /// Reads `{"prompt"}` lines (or `prompt_ids`).
    public static func readPrompts(_ url: URL, vocab: Int, encoder: TextEncoder?) throws -> [PromptExample] {
        try readLines(url, encoder: encoder) { obj, fields in
            let prompt = try fields.ids("prompt", obj, encoder: encoder, completion: false)
            try fields.check(prompt: prompt, "prompt")
            try fields.check(vocab: vocab, prompt)
            return PromptExample(prompt: prompt, line: fields.line)
        }
    }

    /// Reads `{"chosen", "rejected"}` lines, optionally with a shared `prompt` (or `_ids` forms).
    public static func readPairs(_ url: URL, vocab: Int, encoder: TextEncoder?) throws -> [PairExample] {
        try readLines(url, encoder: encoder) { obj, fields in
            let hasPrompt = obj["prompt"] != nil || obj["prompt_ids"] != nil
            let prompt = hasPrompt ? try fields.ids("prompt", obj, encoder: encoder, completion: false) : []
            let chosen = prompt + (try fields.ids("chosen", obj, encoder: encoder, completion: true))
            let rejected = prompt + (try fields.ids("rejected", obj, encoder: encoder, completion: true))
            try fields.check(nonEmpty: chosen, "chosen"); try fields.check(nonEmpty: rejected, "rejected")
            try fields.check(vocab: vocab, chosen + rejected)
            return PairExample(chosen: chosen, rejected: rejected, line: fields.line)
        }
    }

    /// Where a line came from, and the field helpers that name it in errors.
    struct LineContext {
        let path: String
        let line: Int
        /// The texts of a conversational line's fields, rendered with the chat template.
        var rendered: [String: String] = [:]
        var location: String { "\(path):\(line)" }

        init(path: String, line: Int) {
            self.path = path
            self.line = line
        }

        func fail(_ what: String) -> JobError { JobError("\(location): \(what)") }

        /// Token ids of field `key`: `key_ids` as given, or the text `key` tokenised (EOS appended
        /// to completions that lack it).
        func ids(_ key: String, _ obj: [String: JSONValue], encoder: TextEncoder?, completion: Bool) throws -> [Int32] {
            let idKey = key + "_ids"
            if let text = rendered[key], let encoder {
                // A rendered conversation: the template ends each turn; SFT completions (TRL's
                // conversational SFT) get no EOS, preference sides follow the text rule as TRL's DPO.
                var ids = try encoder.encode(text)
                if completion, key != "completion", let eos = encoder.eos, ids.last != eos { ids.append(eos) }
                return ids
            }
            switch (obj[key], obj[idKey]) {
            case (.some, .some):
                throw fail("has both \"\(key)\" and \"\(idKey)\"; give one of them")
            case (nil, nil):
                throw fail("missing \"\(key)\" (text) or \"\(idKey)\" (token ids)")
            case (nil, .some(let v)):
                guard let arr = v.array else { throw fail("\"\(idKey)\" must be an array of integer token ids") }
                var out: [Int32] = []
                out.reserveCapacity(arr.count)
                for x in arr {
                    guard let i = x.int, i >= Int(Int32.min), i <= Int(Int32.max) else {
                        throw fail("\"\(idKey)\" must be an array of integer token ids, found \(x)")
                    }
                    out.append(Int32(i))
                }
                return out
            case (.some(let v), nil):
                guard let text = v.string else {
                    throw fail("\"\(key)\" must be a string (or give \"\(idKey)\")")
                }
                guard let encoder else {
                    throw fail("\"\(key)\" is text but the model directory has no tokenizer.json; add one or give \"\(idKey)\"")
                }
                var ids = try encoder.encode(text)
                if completion, let eos = encoder.eos, ids.last != eos { ids.append(eos) }
                return ids
            }
        }

        func check(prompt: [Int32], _ key: String) throws {
            guard !prompt.isEmpty else {
                throw fail("\"\(key)\" is empty; the first token has no prediction, start prompts with BOS")
            }
        }

        func check(nonEmpty ids: [Int32], _ key: String) throws {
            guard !ids.isEmpty else { throw fail("\"\(key)\" is empty; there is nothing to score") }
        }

        func check(vocab: Int, _ ids: [Int32]) throws {
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocab }) {
                throw fail("token id \(bad) is outside the model's vocabulary (0..<\(vocab))")
            }
        }
    }

    /// Parses every non-blank line of `url` as a JSON object and hands it to `parse`.
    static func readLines<T>(_ url: URL, encoder: TextEncoder?, _ parse: ([String: JSONValue], LineContext) throws -> T) throws -> [T] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw JobError("\(url.path): cannot read (\(error.localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw JobError("\(url.path): not UTF-8 text; expected JSON lines")
        }
        var out: [T] = []
        let decoder = JSONDecoder()
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if raw.allSatisfy(\.isWhitespace) { continue }
            var ctx = LineContext(path: url.path, line: i + 1)
            let obj: [String: JSONValue]
            do { obj = try decoder.decode([String: JSONValue].self, from: Data(raw.utf8)) } catch {
                throw ctx.fail("expected one JSON object per line (\(describe(error)))")
            }
            if Conversation.isConversational(obj) {
                guard let encoder else {
                    throw ctx.fail("conversational data (lists of chat messages) needs tokenizer.json and a chat template in the model directory")
                }
                let template: ModelTemplate?
                do { template = try encoder.chatTemplate() } catch { throw ctx.fail("\(error)") }
                guard let template else {
                    throw ctx.fail("conversational data (lists of chat messages) needs a chat template: the model directory has no chat_template.jinja and no \"chat_template\" in tokenizer_config.json; add one or apply the template first")
                }
                ctx.rendered = try Conversation.render(Data(raw.utf8), template: template, at: ctx)
            }
            out.append(try parse(obj, ctx))
        }
        guard !out.isEmpty else { throw JobError("\(url.path): no examples (the file is empty)") }
        return out
    }
}
