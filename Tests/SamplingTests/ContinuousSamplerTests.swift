// Continuous batching (`rondo serve`'s sampler): requests submitted at different times, with
// different settings and lengths, sharing fewer slots than they have rows, each give exactly what
// `Sampler` gives for that one prompt with the same seed and settings — tokens and log-probs bit for
// bit — so a neighbour never changes a reply.

import Foundation
import Kernels
import Model
import Sampling
import Testing
import TestSupport

extension SamplingTests {
    @Suite struct ContinuousBatching {
        final class Collector: @unchecked Sendable {
            let lock = NSLock()
            var tokens: [[Int32]], logprobs: [[Float]], reasons: [FinishReason?]
            let done = DispatchSemaphore(value: 0)
            var left: Int
            init(_ n: Int) { tokens = Array(repeating: [], count: n); logprobs = tokens.map { _ in [] }; reasons = Array(repeating: nil, count: n); left = n }
            func take(_ e: SlotEvent) {
                lock.withLock {
                    switch e {
                    case .token(let c, let id, let lp): tokens[c].append(id); logprobs[c].append(lp)
                    case .finished(let c, let r): reasons[c] = r; left -= 1; if left == 0 { done.signal() }
                    case .failed(let m): Issue.record("failed: \(m)"); done.signal()
                    }
                }
            }
        }

        @Test func everyRequestEqualsTheSamplerOnItsOwnPrompt() throws {
            Threads.configure(2)
            let model = Models.policy
            let prompts = randomPrompts(6, lengths: 3...12, vocab: model.config.vocabSize, stream: 9)
            var requests: [SlotRequest] = []
            for (i, p) in prompts.enumerated() {
                var r = SlotRequest(prompt: p)
                r.n = 1 + i % 3
                r.temperature = [0, 1, 0.7][i % 3]
                r.topP = i == 4 ? 0.9 : 1
                r.maxNewTokens = 6 + 3 * i
                r.seed = UInt64(100 + i)
                requests.append(r)
            }
            let engine = try ContinuousSampler(model: model, slots: 3, maxLen: 64, tokenBytes: nil)
            defer { engine.shutdown() }
            var collectors: [Collector] = []
            for (i, r) in requests.enumerated() {
                let c = Collector(r.n)
                collectors.append(c)
                _ = try engine.submit(r, events: c.take)
                if i % 2 == 1 { usleep(20_000) }  // later arrivals join a running batch
            }
            for (r, c) in zip(requests, collectors) {
                #expect(c.done.wait(timeout: .now() + 60) == .success)
                var cfg = SamplingConfig()
                cfg.n = r.n; cfg.temperature = r.temperature; cfg.topP = r.topP; cfg.maxNewTokens = r.maxNewTokens; cfg.seed = r.seed
                cfg.batchSize = 1
                let expected = try Sampler(model: model, config: cfg).generate([r.prompt])
                for s in expected {
                    #expect(c.tokens[s.sampleIndex] == s.tokens, "request seed \(r.seed) choice \(s.sampleIndex)")
                    #expect(c.logprobs[s.sampleIndex].map(\.bitPattern) == s.logprobs.map(\.bitPattern))
                    #expect(c.reasons[s.sampleIndex] == s.finishReason)
                }
            }
        }

        @Test func anOversizedPromptIsRefusedBeforeQueueing() throws {
            let engine = try ContinuousSampler(model: Models.policy, slots: 2, maxLen: 16, tokenBytes: nil)
            defer { engine.shutdown() }
            var r = SlotRequest(prompt: Array(repeating: 5, count: 12))
            r.maxNewTokens = 8
            expectError(SamplingError.self, mentioning: ["12 tokens", "max_tokens 8", "16"]) { _ = try engine.submit(r) { _ in } }
        }
    }
}
