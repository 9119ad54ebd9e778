// Campaign prompt files: JSON lines with "prompt" (text) or "prompt_ids", an optional "answer"
// (for verifiers) and an optional "id". Text prompts are tokenized as `rondo sft` and `rondo generate`
// tokenize them (no special tokens added), so a policy sees the format it was trained on.
// "prompt" may also be TRL's conversational form, a list of chat messages: it is rendered with the
// policy's chat template and add_generation_prompt (plus the line's "tools"), then tokenized.

import Foundation
import Kernels
import Model
import Templates
import Tokenizers

public struct CampaignPrompt: Sendable, Equatable {
    public var id: String?
    public var text: String
    public var ids: [Int32]
    public var answer: String?
}

public enum PromptSet {
    struct Line: Decodable {
        let id: JSONValue?
        let prompt: JSONValue?
        let prompt_ids: [Int]?
        let answer: JSONValue?
    }

    /// Reads every line; errors name the file and line. `template` gives the chat template that
    /// renders conversational prompts (asked for only when a line is conversational).
    public static func load(_ url: URL, tokenizer: Tokenizer?, config: LlamaConfig,
                            template: () throws -> ModelTemplate? = { nil }) throws -> [CampaignPrompt] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw CampaignError("\(url.path): cannot read the prompt file (\(error.localizedDescription))")
        }
        var out: [CampaignPrompt] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let at = "\(url.path):\(i + 1)"
            let l: Line
            do { l = try JSONDecoder().decode(Line.self, from: Data(line.utf8)) } catch {
                throw CampaignError("\(at): not a JSON object with \"prompt\" or \"prompt_ids\" (\(error.localizedDescription))")
            }
            let ids: [Int32]
            var shown: String
            if let p = l.prompt_ids {
                ids = p.map { Int32(truncatingIfNeeded: $0) }
                shown = l.prompt?.string ?? tokenizer?.decode(ids) ?? ""
            } else if l.prompt?.array != nil {
                guard let tokenizer else {
                    throw CampaignError("\(at): a conversational prompt needs tokenizer.json in the policy directory")
                }
                shown = try render(line, template: template, at: at)
                ids = tokenizer.encode(shown)
            } else if let p = l.prompt?.string {
                guard let tokenizer else {
                    throw CampaignError("\(at): a text prompt needs tokenizer.json in the policy directory; or give \"prompt_ids\"")
                }
                ids = tokenizer.encode(p)
                shown = p
            } else {
                throw CampaignError("\(at): needs \"prompt\" (text or a list of chat messages) or \"prompt_ids\"")
            }
            guard !ids.isEmpty else { throw CampaignError("\(at): empty prompt") }
            for t in ids where t < 0 || Int(t) >= config.vocabSize {
                throw CampaignError("\(at): token id \(t) is outside the policy's vocabulary (0..<\(config.vocabSize))")
            }
            let answer: String? = l.answer.flatMap { v in v.string ?? v.double.map { $0.rounded() == $0 ? String(Int($0)) : String($0) } }
            let id: String? = l.id.flatMap { v in v.string ?? v.int.map(String.init) }
            out.append(CampaignPrompt(id: id, text: shown, ids: ids, answer: answer))
        }
        guard !out.isEmpty else { throw CampaignError("\(url.path): no prompts") }
        return out
    }

    /// A conversational prompt line rendered with the chat template and the generation prompt.
    static func render(_ line: String, template: () throws -> ModelTemplate?, at: String) throws -> String {
        do {
            guard let t = try template() else {
                throw CampaignError("\(at): \"prompt\" is a list of chat messages but the policy directory has no chat template (chat_template.jinja or \"chat_template\" in tokenizer_config.json)")
            }
            return try t.renderPrompt(line: Data(line.utf8), source: at)
        } catch let e as TemplateError {
            throw CampaignError("\(at): chat template: \(e)")
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
