// Same seed → the same samples, bit for bit, whatever the batch size, the refill order and the
// thread count; and the decoder's logits of a row do not depend on the other rows.

import Foundation
import Kernels
import Model
import Sampling
import Testing
import TestSupport

extension SamplingTests {
    @Suite struct Reproducibility {
        /// Settings whose stop ids end rows at different lengths, so slots are refilled mid-run.
        func config(_ model: LlamaModel, seed: UInt64 = 7) -> SamplingConfig {
            var c = SamplingConfig()
            c.n = 8
            c.maxNewTokens = 20
            c.seed = seed
            c.stopTokenIDs = (0..<Int32(model.config.vocabSize)).filter { $0 % 23 == 5 }  // ~4% per token
            return c
        }

        func expectSame(_ a: [Sample], _ b: [Sample], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(a.count == b.count, "\(what): sample counts differ", sourceLocation: sourceLocation)
            for (x, y) in zip(a, b) where x != y {
                let detail = x.tokens != y.tokens
                    ? "tokens \(x.tokens) vs \(y.tokens)"
                    : "same tokens, log-probs differ by up to \(maxDifference(x.logprobs, y.logprobs))"
                Issue.record("\(what): prompt \(x.promptIndex) sample \(x.sampleIndex) differs: \(detail)",
                             sourceLocation: sourceLocation)
                return
            }
        }

        func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
            zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        }

        func expectBitIdentical(_ a: [Float], _ b: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let same = a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
            #expect(same, "\(what): not bit-identical (max difference \(maxDifference(a, b)))", sourceLocation: sourceLocation)
        }

        @Test(arguments: ["policy", "wide"])
        func sameSeedSameSamplesAcrossBatchSizesAndThreads(_ name: String) throws {
            let model = name == "policy" ? Models.policy : Models.wide
            let prompts = randomPrompts(8, lengths: 1...24, vocab: model.config.vocabSize)
            var c = config(model)
            if name == "wide" { c.temperature = 0.8; c.topK = 40; c.topP = 0.9 }
            let reference = try sample(model, prompts, c, batch: 64, threads: 2)
            #expect(reference.count == 64)
            // Rows ended at different lengths and for both reasons, so slots were refilled.
            #expect(Set(reference.map(\.tokens.count)).count > 3)
            #expect(reference.contains { $0.finishReason == .eos } && reference.contains { $0.finishReason == .length })
            expectSame(try sample(model, prompts, c, batch: 64, threads: 2), reference, "\(name): second run")
            expectSame(try sample(model, prompts, c, batch: 1, threads: 2), reference, "\(name): batch 1")
            expectSame(try sample(model, prompts, c, batch: 64, threads: 1), reference, "\(name): 1 thread")
            expectSame(try sample(model, prompts, c, batch: 1, threads: 1), reference, "\(name): batch 1, 1 thread")
            expectSame(try sample(model, prompts, c, batch: 5, threads: 2), reference, "\(name): batch 5")
            // Prompt 3's samples do not depend on the other prompts' contents.
            var altered = randomPrompts(8, lengths: 1...24, vocab: model.config.vocabSize, stream: 99)
            altered[3] = prompts[3]
            let third = try sample(model, altered, c, batch: 7, threads: 2)
            expectSame(Array(third[24..<32]), Array(reference[24..<32]), "\(name): prompt 3 among other prompts")
            // The seed matters.
            let other = try sample(model, prompts, config(model, seed: 8), batch: 64, threads: 2)
            #expect(other.map(\.tokens) != reference.map(\.tokens), "\(name): another seed gives other samples")
        }

        /// What data-parallel campaigns rely on: the ranks' contiguous blocks of a prompt list, each
        /// numbered from its first prompt's index (`firstPromptIndex`), concatenated, are the whole
        /// list's samples bit for bit — whichever rank (block) drew them.
        @Test func blocksOfThePromptListSampleWhatTheWholeListDoes() throws {
            let model = Models.policy
            let prompts = randomPrompts(7, lengths: 1...24, vocab: model.config.vocabSize, stream: 3)
            var c = config(model)
            let whole = try sample(model, prompts, c, batch: 64, threads: 2)
            for blocks in [[0..<3, 3..<7], [0..<2, 2..<4, 4..<7], [0..<7]] {
                c.batchSize = 5
                let parts = try blocks.flatMap { b in
                    try withThreads(1) { try Sampler(model: model, config: c).generate(Array(prompts[b]), firstPromptIndex: b.lowerBound) }
                }
                expectSame(parts, whole, "blocks \(blocks)")
                #expect(parts.map(\.promptIndex) == whole.map(\.promptIndex))
            }
            // Without the offset, a later block would draw the first prompts' streams: other samples.
            let unnumbered = try Sampler(model: model, config: c).generate(Array(prompts[3..<7]))
            #expect(unnumbered.map(\.tokens) != Array(whole[(3 * c.n)...]).map(\.tokens))
        }

        /// A sampler decodes a snapshot of the parameters taken when it was created: changing the
        /// model afterwards changes nothing, also when a bigger call makes it build a new decoder.
        @Test func aSamplerKeepsTheParametersItWasMadeWith() throws {
            let base = Models.wide
            let model = LlamaModel(config: base.config, parameters: base.parameters.clone())
            let prompts = randomPrompts(4, lengths: 2...12, vocab: model.config.vocabSize, stream: 5)
            let c = config(model)
            let sampler = try withThreads(2) { try Sampler(model: model, config: c) }
            let before = try withThreads(2) { try sampler.generate(Array(prompts[0..<1])) + sampler.generate(prompts) }
            // Perturb every matrix (the tiled copy's source) in place.
            let p = model.parameters.base
            for i in 0..<model.parameters.count { p[i] *= 1.5 }
            let after = try withThreads(2) { try sampler.generate(Array(prompts[0..<1])) + sampler.generate(prompts) }
            expectSame(after, before, "same sampler after the parameters changed")
            let renewed = try withThreads(2) { try Sampler(model: model, config: c) }
            let fresh = try withThreads(2) { try renewed.generate(Array(prompts[0..<1])) + renewed.generate(prompts) }
            #expect(fresh.map(\.logprobs) != before.map(\.logprobs), "a new sampler sees the new parameters")
        }

        @Test func decoderLogitsOfARowIgnoreTheOtherRows() throws {
            let model = Models.wide, V = model.config.vocabSize
            let prompts = randomPrompts(6, lengths: 3...30, vocab: V, stream: 9)
            let dec = try LlamaDecoder(model: model, slots: 8, maxLen: 64, maxTokensPerCall: 40)
            // Row 2 alone, at batch size 1 and with one thread.
            let alone: [Float] = try withThreads(1) {
                Array(try dec.prefill(TokenBatch(rows: [prompts[2]], pad: 0), slots: [5]))
            }
            // Row 2 among five others (chunks of 40 tokens split prompts), two threads, another slot.
            let together: [Float] = try withThreads(2) {
                Array(try dec.prefill(TokenBatch(rows: prompts, pad: 0), slots: [0, 1, 2, 3, 4, 6]))
            }
            expectBitIdentical(Array(together[(2 * V)..<(3 * V)]), alone, "prefill logits of a row among others")
            // Decode steps: slot 5 (row 2 alone) vs slot 2 (row 2 among others), same tokens.
            for t in 0..<6 {
                let tok = Int32(10 + 7 * t)
                let a: [Float] = try withThreads(1) { Array(try dec.step(slots: [5], tokens: [tok])) }
                let b: [Float] = try withThreads(2) {
                    Array(try dec.step(slots: [6, 2, 0, 3], tokens: [3, tok, 4, 5]))
                }
                expectBitIdentical(Array(b[V..<(2 * V)]), a, "step \(t) logits of a row among others")
            }
            // Prefill of prompt + continuation equals prefill then one step per continuation token.
            let cont: [Int32] = [10, 17, 24, 31, 38, 45]
            let whole = try dec.prefill(TokenBatch(rows: [prompts[2] + cont], pad: 0), slots: [7])
            let wholeLogits = Array(whole)
            #expect(dec.cache.lengths[7] == prompts[2].count + cont.count)
            _ = try dec.prefill(TokenBatch(rows: [prompts[2]], pad: 0), slots: [1])
            var stepped: [Float] = []
            for tok in cont { stepped = Array(try dec.step(slots: [1], tokens: [tok])) }
            expectBitIdentical(stepped, wholeLogits, "token-by-token steps vs one prefill")
        }

        /// The decoder's products give the same bits with every micro-kernel variant this CPU runs
        /// (AVX-512, AVX2+FMA, portable fmaf): a sample does not depend on the machine's vector width.
        @Test func decoderLogitsAreTheSameWithEveryKernelVariant() throws {
            let model = Models.wide, V = model.config.vocabSize
            let prompts = randomPrompts(5, lengths: 2...25, vocab: V, stream: 11)
            func run(_ kernel: DecodeKernel) throws -> [Float] {
                let dec = try LlamaDecoder(model: model, slots: 5, maxLen: 40, kernel: kernel)
                var out = try withThreads(2) { Array(try dec.prefill(TokenBatch(rows: prompts, pad: 0), slots: [0, 1, 2, 3, 4])) }
                for t in 0..<4 {
                    let tokens = (0..<5).map { Int32((13 * t + 5 * $0) % V) }
                    out += try withThreads(2) { Array(try dec.step(slots: [4, 0, 3, 1, 2], tokens: tokens)) }
                }
                return out
            }
            let portable = try run(.portable)
            for kernel in DecodeKernel.allCases where kernel.isAvailable && kernel != .portable {
                expectBitIdentical(try run(kernel), portable, "\(kernel) vs portable decoder logits")
            }
        }

        @Test func logitsAgreeWithTheTrainingForward() throws {
            // The decoder's logits against LlamaModel.forward + headLogits on the same sequences.
            for model in [Models.policy, Models.wide] {
                let V = model.config.vocabSize
                let prompts = randomPrompts(3, lengths: 5...20, vocab: V, stream: 4)
                let dec = try LlamaDecoder(model: model, slots: 3, maxLen: 32)
                let got = Array(try dec.prefill(TokenBatch(rows: prompts, pad: 0), slots: [0, 1, 2]))
                let batch = TokenBatch(rows: prompts, pad: 0)
                let ws = LlamaWorkspace(config: model.config, maxBatch: 3, maxSeqLen: batch.seqLen)
                try model.forward(batch, workspace: ws)
                var all = [Float](repeating: 0, count: 3 * batch.seqLen * V)
                all.withUnsafeMutableBufferPointer {
                    model.headLogits(rows: 0..<(3 * batch.seqLen), workspace: ws, into: $0.baseAddress!)
                }
                for b in 0..<3 {
                    let row = b * batch.seqLen + prompts[b].count - 1
                    expectClose(got[(b * V)..<((b + 1) * V)], all[(row * V)..<((row + 1) * V)], 1e-5,
                                "last-token logits of row \(b)")
                }
            }
        }
    }
}
