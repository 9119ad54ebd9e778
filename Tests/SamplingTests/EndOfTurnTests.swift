// End-of-turn ids from generation_config.json (e.g. Llama-3's <|eot_id|>) stop sampling as the
// config's EOS does, as transformers' generate stops on both.

import Foundation
import Model
import Sampling
import Testing
import TestSupport

extension SamplingTests {
    @Suite struct EndOfTurn {
        func greedy(_ model: LlamaModel, _ prompts: [[Int32]], stops: [Int32]? = nil) throws -> [Sample] {
            var c = SamplingConfig()
            c.temperature = 0
            c.maxNewTokens = 12
            c.stopTokenIDs = stops
            return try Sampler(model: model, config: c).generate(prompts)
        }

        @Test func generationConfigEOSJoinsTheStopIDs() throws {
            let prompts = randomPrompts(3, lengths: 2...6, vocab: 320, stream: 5)
            // Without the extra id, greedy runs on; pick a token it produces mid-response.
            let free = try greedy(Models.policy, prompts, stops: [])
            let turnEnd = try #require(free[0].tokens.dropFirst(2).first { $0 != 1 })
            try withTemporaryDirectory { dir in
                let copy = dir.appendingPathComponent("policy")
                try copyDirectory(Fixtures.policy, to: copy)
                try "{\"eos_token_id\": [1, \(turnEnd)], \"bos_token_id\": 0}"
                    .write(to: copy.appendingPathComponent("generation_config.json"), atomically: true, encoding: .utf8)
                let loaded = try ModelDirectory.load(copy)
                #expect(loaded.config.eosTokenIDs == [1])
                #expect(loaded.config.stopTokenIDs == [1, Int(turnEnd)])
                let model = LlamaModel(config: loaded.config, parameters: loaded.parameters)
                let stopped = try greedy(model, prompts)
                for (s, f) in zip(stopped, free) {
                    // Each sample is the free run cut at its first end-of-turn (or EOS) token.
                    let cut = f.tokens.firstIndex { $0 == turnEnd || $0 == 1 }
                    #expect(s.tokens == Array(f.tokens[...(cut ?? f.tokens.count - 1)]))
                    #expect(s.finishReason == (cut == nil ? .length : .eos))
                }
                #expect(stopped[0].finishReason == .eos && stopped[0].tokens.last == turnEnd)

                try "{\"eos_token_id\": 7}".write(to: copy.appendingPathComponent("generation_config.json"), atomically: true, encoding: .utf8)
                #expect(try ModelDirectory.load(copy).config.stopTokenIDs == [1, 7])
                try "{\"eos_token_id\": 4000}".write(to: copy.appendingPathComponent("generation_config.json"), atomically: true, encoding: .utf8)
                #expect { try ModelDirectory.load(copy) } throws: { e in
                    "\(e)".contains("generation_config.json") && "\(e)".contains("4000")
                }
            }
        }
    }
}
