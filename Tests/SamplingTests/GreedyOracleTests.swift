// Greedy decoding against transformers' `model.generate(do_sample=False)` (oracle `greedy` case).

import Foundation
import Model
import Sampling
import Testing
import TestSupport

extension SamplingTests {
    @Suite struct GreedyOracle {
        @Test func greedyReproducesTransformersGenerate() throws {
            let greedy = try #require(Oracle.cases["greedy"])
            let items = try #require(greedy["items"]?.array)
            let prompts = items.map { Oracle.ints($0["prompt_ids"]).map(Int32.init) }
            var config = SamplingConfig()
            config.temperature = 0
            config.maxNewTokens = try #require(greedy["max_new_tokens"]?.int)
            #expect(Models.policy.config.eosTokenIDs == [try #require(greedy["eos_token_id"]?.int)])
            #expect(items.contains { $0["stopped_on_eos"]?.bool == true }, "the oracle has an item that stops at EOS")
            // One prompt at a time (as the oracle ran) and all at once (rows drop out at EOS).
            for batch in [1, items.count] {
                let samples = try sample(Models.policy, prompts, config, batch: batch, threads: 2)
                #expect(samples.count == items.count)
                for (i, item) in items.enumerated() {
                    let expected = Oracle.ints(item["new_token_ids"]).map(Int32.init)
                    #expect(samples[i].tokens == expected, "item \(i), batch \(batch)")
                    let eos = item["stopped_on_eos"]?.bool == true
                    #expect(samples[i].finishReason == (eos ? .eos : .length), "item \(i), batch \(batch)")
                    #expect(samples[i].logprobs.count == expected.count)
                    #expect(samples[i].logprobs.allSatisfy { $0 < 0 && $0.isFinite })
                }
            }
        }
    }
}
