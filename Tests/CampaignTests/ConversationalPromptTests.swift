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
            let loaded = try PromptSet.load(prompts, tokenizer: tokenizer, config: config, template: template)
            #expect(loaded[0].text == "<|bos|><user>7*8?<assistant>")
            #expect(loaded[0].ids == tokenizer.encode("<|bos|><user>7*8?<assistant>") && loaded[0].ids.first == 0)
            #expect(loaded[0].answer == "56" && loaded[0].id == "a")
            #expect(loaded[1].text == "plain text")
            #expect { try PromptSet.load(prompts, tokenizer: tokenizer, config: config) } throws: { e in
                "\(e)".contains("prompts.jsonl:1") && "\(e)".contains("chat template")
            }
        }
    }
}
