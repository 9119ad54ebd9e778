// TRL's conversational data forms through `rondo sft` and `rondo dpo` (acceptance 2 of issue 13):
// the oracle policy with SmolLM2's chat template added; the rendered lines score exactly as the
// token ids of the rendered text (tokenized by `rondo tokenize`), and train.

import Foundation
import Model
import Testing
import TestSupport

@Suite(.serialized) struct ConversationalDataTests {
    static let system = #"{"role": "system", "content": "Be brief."}"#
    static let user = #"{"role": "user", "content": "7*8?"}"#
    static let chosen = #"{"role": "assistant", "content": "56"}"#
    static let rejected = #"{"role": "assistant", "content": "54"}"#
    /// What SmolLM2's template renders for the prompt (with the generation prompt) and each answer.
    static let promptText = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n7*8?<|im_end|>\n<|im_start|>assistant\n"
    static let chosenText = "56<|im_end|>\n", rejectedText = "54<|im_end|>\n"

    /// A copy of the oracle policy with SmolLM2-135M-Instruct's chat template as chat_template.jinja.
    static func policyWithTemplate(in dir: URL) throws -> URL {
        let model = dir.appendingPathComponent("policy")
        try copyDirectory(Fixtures.policy, to: model)
        let cases = Fixtures.oracle.deletingLastPathComponent().appendingPathComponent("chat-templates/cases.json")
        let fixture = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: cases))
        let smol = try #require(fixture["templates"]?.array?.first { $0["name"]?.string == "SmolLM2-135M-Instruct" })
        try #require(smol["template"]?.string).write(to: model.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        return model
    }

    /// Token ids of each text, from `rondo tokenize`.
    static func tokenize(_ texts: [String], model: URL) throws -> [[Int]] {
        let stdin = try texts.map { String(decoding: try JSONEncoder().encode(["text": $0]), as: UTF8.self) }.joined(separator: "\n")
        let r = try runRondo(["tokenize", "--tokenizer", model.path], stdin: stdin)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        return try r.stdout.split(separator: "\n").map { line in
            try #require(try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))["ids"]?.array).compactMap(\.int)
        }
    }

    static func write(_ lines: [String], _ url: URL) throws {
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    @Test func sftOnMessagesAndPromptCompletionScoresAsTheRenderedIds() throws {
        try withTemporaryDirectory { dir in
            let model = try Self.policyWithTemplate(in: dir)
            let ids = try Self.tokenize([Self.promptText, Self.chosenText], model: model)
            let messages = dir.appendingPathComponent("messages.jsonl"), pc = dir.appendingPathComponent("pc.jsonl")
            let idFile = dir.appendingPathComponent("ids.jsonl")
            try Self.write([#"{"messages": [\#(Self.system), \#(Self.user), \#(Self.chosen)]}"#], messages)
            try Self.write([#"{"prompt": [\#(Self.system), \#(Self.user)], "completion": [\#(Self.chosen)]}"#], pc)
            // Conversational SFT adds no EOS: the template ends the turn.
            try Self.write(["{\"prompt_ids\": \(ids[0]), \"completion_ids\": \(ids[1])}"], idFile)
            let outputs = try [messages, pc, idFile].map { file in
                let r = try runRondo(["sft", "--eval-only", "--model", model.path, "--data", file.path])
                #expect(r.status == 0, "stderr: \(r.stderr)")
                return r.stdout
            }
            #expect(outputs[0] == outputs[2] && outputs[1] == outputs[2], "\(outputs)")
            #expect(outputs[2].contains("\"completion_tokens\": \(ids[1].count)"), "\(outputs[2])")

            let out = dir.appendingPathComponent("out")
            let t = try runRondo(["sft", "--model", model.path, "--data", messages.path, "--out", out.path, "--lr", "1e-3",
                                  "--epochs", "2", "--threads", "1"])
            #expect(t.status == 0, "stderr: \(t.stderr)")
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path))
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("chat_template.jinja").path))
            let after = try runRondo(["sft", "--eval-only", "--model", out.path, "--data", messages.path])
            let loss = { (s: String) in try JSONDecoder().decode(JSONValue.self, from: Data(s.utf8))["loss"]?.double ?? .nan }
            #expect(try loss(after.stdout) < loss(outputs[0]), "training lowers the loss: \(after.stdout) vs \(outputs[0])")
        }
    }

    @Test func dpoOnConversationalTriplesScoresAsTheRenderedIds() throws {
        try withTemporaryDirectory { dir in
            let model = try Self.policyWithTemplate(in: dir)
            let ids = try Self.tokenize([Self.promptText, Self.chosenText, Self.rejectedText], model: model)
            let conv = dir.appendingPathComponent("conv.jsonl"), idFile = dir.appendingPathComponent("ids.jsonl")
            let line = #"{"prompt": [\#(Self.system), \#(Self.user)], "chosen": [\#(Self.chosen)], "rejected": [\#(Self.rejected)]}"#
            try Self.write([line, line], conv)
            // TRL's DPO appends EOS (id 1) to each side.
            let idLine = "{\"prompt_ids\": \(ids[0]), \"chosen_ids\": \(ids[1] + [1]), \"rejected_ids\": \(ids[2] + [1])}"
            try Self.write([idLine, idLine], idFile)
            let a = try runRondo(["dpo", "--eval-only", "--model", model.path, "--reference", Fixtures.reference.path, "--data", conv.path])
            let b = try runRondo(["dpo", "--eval-only", "--model", model.path, "--reference", Fixtures.reference.path, "--data", idFile.path])
            #expect(a.status == 0 && b.status == 0, "stderr: \(a.stderr) \(b.stderr)")
            #expect(a.stdout == b.stdout, "\(a.stdout) vs \(b.stdout)")

            let out = dir.appendingPathComponent("out")
            let t = try runRondo(["dpo", "--model", model.path, "--data", conv.path, "--out", out.path, "--batch-size", "2",
                                  "--lr", "1e-3", "--threads", "1"])
            #expect(t.status == 0, "stderr: \(t.stderr)")
            #expect(t.stderr.contains("trained steps 1…1 of 1"), "stderr: \(t.stderr)")
        }
    }

    /// Reward-model pairs with an implicit prompt: each side is the whole conversation rendered.
    @Test func rewardPairsRenderEachConversation() throws {
        try withTemporaryDirectory { dir in
            let model = dir.appendingPathComponent("reward")
            try copyDirectory(Fixtures.reward, to: model)
            try "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
                .write(to: model.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
            let ids = try Self.tokenize(["<user>7*8?<assistant>56", "<user>7*8?<assistant>54"], model: model)
            let conv = dir.appendingPathComponent("conv.jsonl"), idFile = dir.appendingPathComponent("ids.jsonl")
            try Self.write([#"{"chosen": [\#(Self.user), \#(Self.chosen)], "rejected": [\#(Self.user), \#(Self.rejected)]}"#], conv)
            try Self.write(["{\"chosen_ids\": \(ids[0] + [1]), \"rejected_ids\": \(ids[1] + [1])}"], idFile)
            let a = try runRondo(["rm", "train", "--eval-only", "--model", model.path, "--data", conv.path])
            let b = try runRondo(["rm", "train", "--eval-only", "--model", model.path, "--data", idFile.path])
            #expect(a.status == 0 && b.status == 0, "stderr: \(a.stderr) \(b.stderr)")
            #expect(a.stdout == b.stdout && !a.stdout.isEmpty, "\(a.stdout) vs \(b.stdout)")
        }
    }

    @Test func conversationalDataNeedsATemplateAndAnAssistantEnd() throws {
        try withTemporaryDirectory { dir in
            let conv = dir.appendingPathComponent("conv.jsonl")
            try Self.write([#"{"messages": [\#(Self.user), \#(Self.chosen)]}"#], conv)
            let r = try runRondo(["sft", "--eval-only", "--model", Fixtures.policy.path, "--data", conv.path])
            #expect(r.status != 0 && r.stderr.contains("conv.jsonl:1") && r.stderr.contains("chat template"), "stderr: \(r.stderr)")

            let model = try Self.policyWithTemplate(in: dir)
            try Self.write(["{\"prompt_ids\": [0, 5], \"completion_ids\": [7]}", #"{"messages": [\#(Self.system), \#(Self.user)]}"#], conv)
            let r2 = try runRondo(["sft", "--eval-only", "--model", model.path, "--data", conv.path])
            #expect(r2.status != 0 && r2.stderr.contains("conv.jsonl:2") && r2.stderr.contains("assistant"), "stderr: \(r2.stderr)")
        }
    }
}
