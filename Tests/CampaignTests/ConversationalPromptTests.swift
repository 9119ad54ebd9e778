// Campaign prompt files in TRL's conversational prompt-only form: rendered with the policy's chat
// template and the generation prompt, then tokenized.

import Campaign
import Foundation
import Model
import Templates
import Testing
import TestSupport
import Tokenizers

@Suite struct ConversationalPromptTests {
    @Test func conversationalPromptsRenderWithTheGenerationPrompt() throws {
        try withTemporaryDirectory { dir in
            let prompts = dir.appendingPathComponent("prompts.jsonl")
            try """
                {"id": "a", "prompt": [{"role": "user", "content": "7*8?"}], "answer": 56}
                {"prompt": "plain text"}
                """.write(to: prompts, atomically: true, encoding: .utf8)
            let tokenizer = try Tokenizer(url: Fixtures.policy.appendingPathComponent("tokenizer.json"))
            let config = try LlamaConfig.load(Fixtures.policy.appendingPathComponent("config.json"))
            let source = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
            let template = ModelTemplate(template: try ChatTemplate(source, name: "t"), specialTokens: ["bos_token": "<|bos|>"])
            let loaded = try PromptSet.load(prompts, key: "prompts.train", tokenizer: tokenizer, config: config, maxNewTokens: 4, needsAnswer: false) { template }
            #expect(loaded[0].text == "<|bos|><user>7*8?<assistant>")
            #expect(loaded[0].ids == tokenizer.encode("<|bos|><user>7*8?<assistant>") && loaded[0].ids.first == 0)
            #expect(loaded[0].answer == "56" && loaded[0].id == "a")
            #expect(loaded[1].text == "plain text")
            #expect { try PromptSet.load(prompts, key: "prompts.train", tokenizer: tokenizer, config: config, maxNewTokens: 4, needsAnswer: false) } throws: { e in
                "\(e)".contains("prompts.jsonl:1") && "\(e)".contains("chat template")
            }
        }
    }

    /// A campaign whose prompt files are conversational, on a policy whose template renders just the
    /// message text, commits exactly the bytes of the same campaign on the text prompts.
    @Test func conversationalCampaignEqualsTheTextCampaign() throws {
        try withTemporaryDirectory { dir in
            let policy = dir.appendingPathComponent("policy")
            try copyDirectory(repo.appendingPathComponent("policies/starter"), to: policy)
            try "{% for m in messages %}{{ m.content }}{% endfor %}"
                .write(to: policy.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
            var text = try String(contentsOf: try smallConfig(dir, rounds: 1), encoding: .utf8)
            text = text.replacingOccurrences(of: repo.appendingPathComponent("policies/starter").path, with: policy.path)
            for name in ["prompts", "eval"] {
                let source = repo.appendingPathComponent("data/arithmetic/\(name).jsonl")
                let lines = try String(contentsOf: source, encoding: .utf8).split(separator: "\n").map { line -> String in
                    let o = try JSONDecoder().decode([String: String].self, from: Data(line.utf8))
                    let message = String(decoding: try JSONEncoder().encode(["role": "user", "content": o["prompt"] ?? ""]), as: UTF8.self)
                    return "{\"id\": \"\(o["id"] ?? "")\", \"prompt\": [\(message)], \"answer\": \"\(o["answer"] ?? "")\"}"
                }
                let conv = dir.appendingPathComponent("\(name)-chat.jsonl")
                try (lines.joined(separator: "\n") + "\n").write(to: conv, atomically: true, encoding: .utf8)
                text = text.replacingOccurrences(of: source.path, with: conv.path)
            }
            let chatConfig = dir.appendingPathComponent("chat.yaml")
            try text.write(to: chatConfig, atomically: true, encoding: .utf8)
            let a = dir.appendingPathComponent("text"), b = dir.appendingPathComponent("chat")
            let ra = try runRondo(["start", try smallConfig(dir, rounds: 1).path, "--dir", a.path])
            let rb = try runRondo(["start", chatConfig.path, "--dir", b.path])
            #expect(ra.status == 0 && rb.status == 0, "\(ra.stderr) \(rb.stderr)")
            let sa = try snapshot(a), sb = try snapshot(b)
            #expect(sa.keys.contains { $0.hasSuffix("model.safetensors") })
            // Checkpoints byte-identical; the buffers differ only in their header's config hash (the
            // configs name different files), so their records are compared.
            for (path, sha) in sa where !path.hasSuffix("metrics.json") && !path.hasSuffix(".manifest.json")
                && !path.hasSuffix(".zst") {
                #expect(sb[path] == sha, "\(path) differs")
            }
            let ea = try runRondo(["inspect", a.path, "--round", "1", "--export", "jsonl"])
            let eb = try runRondo(["inspect", b.path, "--round", "1", "--export", "jsonl"])
            #expect(ea.status == 0 && !ea.stdout.isEmpty && ea.stdout == eb.stdout, "the rollout records differ")
            #expect(sb.keys.contains { $0.hasSuffix("policy/chat_template.jinja") }, "round checkpoints keep the template")
        }
    }
}
