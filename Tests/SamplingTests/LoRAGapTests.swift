// The sampler decodes a LoRA policy with W + s·B·A merged into its own weight copy; training scores
// the same tokens as base + adapter. Their per-token log-prob gap must stay ≤ 1e-4 (max|Δ| / max|lp|),
// whether the sampler decodes a merged model or merges the adapter into its own copy (campaigns).

import Foundation
import Model
import Sampling
import Testing
import TestSupport

extension SamplingTests {
    @Suite struct LoRAGap {
        @Test(arguments: LoRAFixture.names)
        func mergedSamplerMatchesTheAdapterForward(_ name: String) throws {
            let base = Models.policy
            let adapter = try LoRAAdapter.load(from: LoRAFixture.adapterDir(name), model: base.config)
            let merged = LlamaModel(config: base.config, parameters: adapter.mergedCopy(of: base.parameters))
            let prompts = randomPrompts(5, lengths: 2...16, vocab: base.config.vocabSize, stream: 12)
            var c = SamplingConfig()
            c.n = 4; c.maxNewTokens = 24; c.temperature = 0.9; c.seed = 5
            let samples = try sample(merged, prompts, c, batch: 8, threads: 2)
            let rows = samples.map { prompts[$0.promptIndex] + $0.tokens }
            let batch = TokenBatch(rows: rows, pad: 0, scoreFrom: samples.map { prompts[$0.promptIndex].count })
            let ws = LlamaWorkspace(config: base.config, maxBatch: rows.count, maxSeqLen: batch.seqLen)
            let out = try base.forward(batch, workspace: ws, lora: LoRAActivations(adapter: adapter, maxRows: ws.maxRows))
            var got: [Float] = [], want: [Float] = []
            for (b, s) in samples.enumerated() {
                got += s.logprobs
                want += (0..<s.tokens.count).map { out[b * batch.seqLen + prompts[s.promptIndex].count + $0] }
            }
            #expect(got.count > 100)
            let err = relativeError(got, want)
            print("LoRA \(name): merged sampler vs base+adapter forward, max relative error \(err) over \(got.count) tokens")
            #expect(err <= 1e-4, "\(name): relative error \(err) > 1e-4")
            // The adapter matters: the base alone scores these tokens differently.
            let plain = try base.forward(batch, workspace: ws)
            let baseLp = samples.enumerated().flatMap { b, s in (0..<s.tokens.count).map { plain[b * batch.seqLen + prompts[s.promptIndex].count + $0] } }
            #expect(relativeError(baseLp, want) > 1e-2)

            // A campaign's sampler merges group by group into its own tiled copy (no second full
            // model): the same arithmetic as mergedCopy, so the same samples and log-probs, bit for bit.
            let own = try sample(base, adapter: adapter, prompts, c, batch: 8, threads: 2)
            #expect(own.map(\.tokens) == samples.map(\.tokens))
            #expect(own.flatMap(\.logprobs).map(\.bitPattern) == got.map(\.bitPattern))
            #expect(relativeError(own.flatMap(\.logprobs), want) <= 1e-4)
        }
    }
}
