// Campaign prompt files: JSON lines with "prompt" (text) or "prompt_ids", an optional "answer"
// (for verifiers) and an optional "id". Text prompts are tokenized as `rondo sft` and `rondo generate`
// tokenize them (no special tokens added), so a policy sees the format it was trained on.
// "prompt" may also be TRL's conversational form, a list of chat messages: it is rendered with the
// policy's chat template and add_generation_prompt (plus the line's "tools"), then tokenized.

import Foundation
import Kernels
import Model
import Sampling
import Templates
import Tokenizers

public struct CampaignPrompt: Sendable, Equatable {
    public var id: String?
    public var text: String
    public var ids: [Int32]
    public var answer: String?
}

public enum PromptSet {
    /// Reads every line and checks it before any round runs: token ids inside the policy's
    /// vocabulary, room for `maxNewTokens` in its positions, and an "answer" on every line when
    /// `needsAnswer` (the verifier labeller). Errors name the file and line; `key` names the config
    /// key that gave the path.
    /// `template` gives the chat template that renders conversational prompts (asked for only when
    /// a line is conversational).
    public static func load(_ url: URL, key: String, tokenizer: Tokenizer?, config: LlamaConfig, maxNewTokens: Int,
                            needsAnswer: Bool, template: () throws -> ModelTemplate? = { nil }) throws -> [CampaignPrompt] {
        let text = try readText(url, key: key)
        var out: [CampaignPrompt] = []
        let decoder = JSONDecoder()
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let at = "\(url.path):\(i + 1)"
            do {
                out.append(try parse(line, decoder: decoder, tokenizer: tokenizer, config: config, maxNewTokens: maxNewTokens,
                                     needsAnswer: needsAnswer, template: template))
            } catch let e as SamplingError {
                throw CampaignError("\(at): \(e)")
            }
        }
        guard !out.isEmpty else { throw CampaignError("\(url.path): no prompts (\(key))") }
        return out
    }

    static func readText(_ url: URL, key: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw CampaignError("\(url.path): no such prompt file; check \(key) in the config")
        }
        if isDirectory.boolValue {
            throw CampaignError("\(url.path): is a directory; \(key) must name a JSON-lines prompt file")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw CampaignError("\(url.path): cannot read the prompt file (\(key)); check its permissions")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CampaignError("\(url.path): not UTF-8 text; \(key) must name a JSON-lines prompt file")
        }
        return text
    }

    /// The keys of a prompt line, decoded with their types (fast; a line that does not fit is
    /// diagnosed by `explain`).
    struct Line: Decodable {
        let id: Scalar?
        let prompt: PromptField?
        let prompt_ids: [Int]?
        let answer: Scalar?
    }

    /// "prompt": text, or a list of chat messages (TRL's conversational form; the whole line is
    /// rendered by the chat template, so the messages themselves are not decoded here).
    enum PromptField: Decodable {
        case text(String), messages
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .text(s); return }
            _ = try c.decode([JSONValue].self)
            self = .messages
        }
        var text: String? { if case .text(let s) = self { return s } else { return nil } }
    }

    /// A string or a number (`answer`, `id`), decoded trying the string first: a failed attempt
    /// costs a DecodingError, and 2,000-line prompt files are read at every start.
    enum Scalar: Decodable {
        case string(String), number(Double)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .string(s) } else { self = .number(try c.decode(Double.self)) }
        }
        /// The text: integral numbers without a fraction (7, not 7.0).
        var text: String {
            switch self {
            case .string(let s): return s
            case .number(let d): return d.rounded() == d && abs(d) < 1e15 ? String(Int(d)) : String(d)
            }
        }
    }

    /// One line; errors say what is wrong (the caller adds file:line).
    static func parse(_ line: String, decoder: JSONDecoder, tokenizer: Tokenizer?, config: LlamaConfig, maxNewTokens: Int,
                      needsAnswer: Bool, template: () throws -> ModelTemplate?) throws -> CampaignPrompt {
        let object: Line
        do { object = try decoder.decode(Line.self, from: Data(line.utf8)) } catch { throw explain(line, config: config) }
        let ids: [Int32], shown: String
        if let p = object.prompt_ids {
            ids = try PromptTokens.ids(p, vocabSize: config.vocabSize)
            shown = object.prompt?.text ?? tokenizer?.decode(ids) ?? ""
        } else if let prompt = object.prompt {
            guard let tokenizer else {
                throw SamplingError("a text or conversational prompt needs tokenizer.json in the policy directory; or give \"prompt_ids\"")
            }
            shown = try prompt.text ?? render(line, template: template)
            ids = tokenizer.encode(shown)
            for t in ids where Int(t) >= config.vocabSize {
                throw SamplingError("token id \(t) is outside the policy's vocabulary (0..<\(config.vocabSize))")
            }
        } else {
            throw SamplingError("needs \"prompt\" (text or a list of chat messages) or \"prompt_ids\"")
        }
        try PromptTokens.checkLength(ids.count, maxNewTokens: maxNewTokens, positions: max(1, config.maxPositionEmbeddings),
                                     setting: "sampling.max_new_tokens")
        let answer = object.answer?.text
        if needsAnswer && answer == nil {
            throw SamplingError("no \"answer\"; the verifier labeller (labeller.type: verifier) needs one on every training prompt")
        }
        let id = object.id?.text
        return CampaignPrompt(id: id, text: shown, ids: ids, answer: answer)
    }

    /// Why a line does not decode as a `Line`.
    static func explain(_ line: String, config: LlamaConfig) -> SamplingError {
        guard let object = (try? JSONDecoder().decode(JSONValue.self, from: Data(line.utf8)))?.object else {
            return SamplingError("not a JSON object; expected {\"prompt\": \"…\"} or {\"prompt_ids\": […]}, with optional \"answer\" and \"id\"")
        }
        if let p = object["prompt"], p.string == nil, p.array == nil, p != .null {
            return SamplingError("\"prompt\" must be a string or a list of chat messages")
        }
        if let p = object["prompt_ids"] {
            do { _ = try PromptTokens.ids(p, vocabSize: config.vocabSize) } catch let e as SamplingError { return e } catch {}
        }
        for key in ["answer", "id"] {
            if let v = object[key], v != .null, v.string == nil, v.double == nil { return SamplingError("\"\(key)\" is \(v); give a string or a number") }
        }
        return SamplingError("does not fit {\"prompt\": \"…\"} or {\"prompt_ids\": […]}, with optional \"answer\" and \"id\"")
    }

    /// A conversational prompt line rendered with the chat template and the generation prompt.
    static func render(_ line: String, template: () throws -> ModelTemplate?) throws -> String {
        do {
            guard let t = try template() else {
                throw SamplingError("\"prompt\" is a list of chat messages but the policy directory has no chat template (chat_template.jinja or \"chat_template\" in tokenizer_config.json)")
            }
            return try t.renderPrompt(line: Data(line.utf8), source: "the prompt line")
        } catch let e as TemplateError {
            throw SamplingError("chat template: \(e)")
        }
    }

    /// The prompts of a round: positions cursor ..< cursor + count of the seeded order, where the
    /// order is a fresh Philox shuffle of all prompts for every pass (epoch) over the file.
    public static func select(count: Int, cursor: Int, total: Int, seed: UInt64) -> [Int] {
        var out: [Int] = []
        var epochOrder: (epoch: Int, order: [Int])? = nil
        for k in cursor..<(cursor + count) {
            let epoch = k / total, pos = k % total
            if epochOrder?.epoch != epoch { epochOrder = (epoch, shuffle(total, seed: seed, epoch: epoch)) }
            out.append(epochOrder!.order[pos])
        }
        return out
    }

    /// Fisher–Yates with draws from Philox(seed, stream 0x5052_4F4D_5054 + epoch).
    static func shuffle(_ n: Int, seed: UInt64, epoch: Int) -> [Int] {
        var a = Array(0..<n)
        let rng = Philox(seed: seed, stream: 0x5052_4F4D_5054 &+ UInt64(epoch))
        for i in stride(from: n - 1, to: 0, by: -1) {
            let (r0, r1, _, _) = rng.block(UInt64(i))
            let j = Int((UInt64(r0) << 32 | UInt64(r1)) % UInt64(i + 1))
            a.swapAt(i, j)
        }
        return a
    }
}
