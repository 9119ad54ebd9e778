// Finish reasons (eos / stop string / length), rows dropping out of the batch, stop-string
// matching on bytes, config validation and the generate job's input errors.

import Foundation
import Model
import Sampling
import Testing
import TestSupport
import Tokenizers

extension SamplingTests {
    @Suite struct FinishReasons {
        @Test func lengthAndEOSAndFinishedRowsCostNothing() throws {
            let model = Models.policy
            let prompts = randomPrompts(6, lengths: 1...12, vocab: model.config.vocabSize, stream: 21)
            var c = SamplingConfig()
            c.n = 5
            c.maxNewTokens = 16
            c.batchSize = 7
            let stops: Set<Int32> = Set((0..<Int32(320)).filter { $0 % 17 == 3 })
            c.stopTokenIDs = Array(stops)
            var prefillRows = 0, stepRows = 0, finished = 0
            let samples = try withThreads(2) {
                try Sampler(model: model, config: c).generate(prompts) { event in
                    switch event {
                    case .prefill(let rows, _): prefillRows += rows
                    case .step(let rows):
                        stepRows += rows
                        #expect(rows <= 7)
                    case .finished: finished += 1
                    }
                }
            }
            #expect(samples.count == 30 && finished == 30 && prefillRows == 30)
            // A sample of k tokens is fed k − 1 times (its first token comes from the prefill, its
            // last is never fed): finished rows are not computed.
            #expect(stepRows == samples.reduce(0) { $0 + $1.tokens.count - 1 })
            for s in samples {
                #expect(s.tokens.count == s.logprobs.count)
                #expect(!s.tokens.dropLast().contains { stops.contains($0) }, "a stop id inside a response")
                switch s.finishReason {
                case .eos: #expect(stops.contains(s.tokens.last!))
                case .length: #expect(s.tokens.count == 16 && !stops.contains(s.tokens.last!))
                case .stop: Issue.record("no stop strings were set")
                }
            }
            #expect(samples.contains { $0.finishReason == .eos } && samples.contains { $0.finishReason == .length })
            // Samples are ordered by (prompt, sample).
            #expect(samples.map { $0.promptIndex * 5 + $0.sampleIndex } == Array(0..<30))
            // No stop ids: every sample runs to the length limit. Default: the model's EOS.
            c.stopTokenIDs = []
            #expect(try sample(model, prompts, c, batch: 7, threads: 2).allSatisfy { $0.finishReason == .length && $0.tokens.count == 16 })
            c.stopTokenIDs = nil
            for s in try sample(model, prompts, c, batch: 7, threads: 2) where s.finishReason == .eos {
                #expect(s.tokens.last == 1)
            }
            c.maxNewTokens = 1
            #expect(try sample(model, prompts, c, batch: 3, threads: 1).allSatisfy { $0.tokens.count == 1 })
        }

        @Test func stopStringsEndAtTheTokenThatCompletesThem() throws {
            // Each token stands for one of four letters: stop strings span token boundaries.
            let letters = Array("abcd".utf8)
            let bytes: (Int32) -> [UInt8] = { id in id % 9 == 0 ? [letters[Int(id) % 4], letters[Int(id / 9) % 4]] : [letters[Int(id) % 4]] }
            let model = Models.policy
            let prompts = randomPrompts(4, lengths: 2...8, vocab: model.config.vocabSize, stream: 22)
            var c = SamplingConfig()
            c.n = 8
            c.maxNewTokens = 30
            c.stopTokenIDs = []
            c.stopStrings = ["cab", "dd"]
            let samples = try sample(model, prompts, c, batch: 16, threads: 2, tokenBytes: bytes)
            func text(_ ids: ArraySlice<Int32>) -> String { String(decoding: ids.flatMap(bytes), as: UTF8.self) }
            var stopped = 0
            for s in samples {
                let full = text(s.tokens[...]), before = text(s.tokens.dropLast())
                let hits = c.stopStrings.contains { full.contains($0) }
                let earlier = c.stopStrings.contains { before.contains($0) }
                #expect(!earlier, "a stop string was complete before the last token: \(full)")
                if s.finishReason == .stop { stopped += 1; #expect(hits) } else { #expect(!hits && s.tokens.count == 30) }
            }
            #expect(stopped > 5)
            // Same samples at batch size 1 (the matcher state is per row).
            #expect(try sample(model, prompts, c, batch: 1, threads: 1, tokenBytes: bytes) == samples)
            // Stop strings without bytes are refused.
            #expect(throws: SamplingError.self) { try Sampler(model: model, config: c) }
        }

        @Test func stopStringMatcherOnBytes() {
            var m = StopStringMatcher(["\n\n", "é!"])
            let first = m.append(Array("ab\n".utf8)), second = m.append(Array("\nc".utf8))
            #expect(!first && second)
            var u = StopStringMatcher(["é!"])  // é is two bytes, C3 A9, here split across tokens
            let u1 = u.append([0x61, 0xC3]), u2 = u.append([0xA9]), u3 = u.append(Array("!".utf8))
            #expect(!u1 && !u2 && u3)
            var none = StopStringMatcher([])
            let n1 = none.append(Array("anything".utf8))
            #expect(none.isEmpty && !n1)
        }

        @Test func stopStringsWithTheFixtureTokenizer() throws {
            let tokenizer = try Tokenizer(url: Fixtures.policy)
            let model = Models.policy
            let prompts = ["<|bos|>the cat sat", "<|bos|>12+35=", "<|bos|>hello"].map { tokenizer.encode($0) }
            var c = SamplingConfig()
            c.n = 4
            c.maxNewTokens = 20
            c.stopStrings = ["e", "1"]
            let samples = try sample(model, prompts, c, batch: 4, threads: 2, tokenBytes: { tokenizer.bytes($0) })
            #expect(samples.contains { $0.finishReason == .stop })
            for s in samples where s.finishReason == .stop {
                let all = s.tokens.flatMap { tokenizer.bytes($0) }
                let before = s.tokens.dropLast().flatMap { tokenizer.bytes($0) }
                #expect(all.contains(UInt8(ascii: "e")) || all.contains(UInt8(ascii: "1")))
                #expect(!before.contains(UInt8(ascii: "e")) && !before.contains(UInt8(ascii: "1")))
            }
        }

        @Test func configValidationAndDecoding() throws {
            func bad(_ edit: (inout SamplingConfig) -> Void) -> Bool {
                var c = SamplingConfig()
                edit(&c)
                do { try c.validate(); return false } catch { return error is SamplingError }
            }
            let edits: [(String, (inout SamplingConfig) -> Void)] = [
                ("n 0", { $0.n = 0 }), ("temperature -1", { $0.temperature = -1 }),
                ("temperature NaN", { $0.temperature = .nan }), ("top-k -1", { $0.topK = -1 }),
                ("top-p 0", { $0.topP = 0 }), ("top-p 1.5", { $0.topP = 1.5 }),
                ("max new 0", { $0.maxNewTokens = 0 }), ("batch 0", { $0.batchSize = 0 }),
                ("empty stop string", { $0.stopStrings = [""] }), ("stop id -1", { $0.stopTokenIDs = [-1] }),
            ]
            for (what, edit) in edits {
                let refused = bad(edit)
                #expect(refused, "\(what) accepted")
            }
            let defaultsOK = !bad { _ in }
            #expect(defaultsOK)
            let c = try JSONDecoder().decode(SamplingConfig.self, from: Data(#"{"n": 3, "top_p": 0.9, "max_new_tokens": 5}"#.utf8))
            #expect(c.n == 3 && c.topP == 0.9 && c.maxNewTokens == 5 && c.temperature == 1 && c.stopTokenIDs == nil)
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(SamplingConfig.self, from: Data(#"{"top_p": 2}"#.utf8)) }
            let round = try JSONDecoder().decode(SamplingConfig.self, from: JSONEncoder().encode(c))
            #expect(round == c)
            // A stop id outside the vocabulary, an empty or too long prompt.
            var s = SamplingConfig()
            s.stopTokenIDs = [320]
            #expect(throws: SamplingError.self) { try Sampler(model: Models.policy, config: s) }
            s.stopTokenIDs = nil
            #expect(throws: SamplingError.self) { try Sampler(model: Models.policy, config: s).generate([[]]) }
            s.maxNewTokens = 250
            #expect(throws: SamplingError.self) { try Sampler(model: Models.policy, config: s).generate([Array(repeating: 5, count: 10)]) }
        }

        @Test func generateJobWritesLinesAndNamesBadLines() throws {
            try withTemporaryDirectory { dir in
                let input = dir.appendingPathComponent("prompts.jsonl")
                try Data("{\"prompt\": \"<|bos|>the cat\"}\n\n{\"prompt_ids\": [0, 5, 9]}\n".utf8).write(to: input)
                var o = GenerateOptions(model: Fixtures.policy, prompts: input, output: dir.appendingPathComponent("out.jsonl"))
                o.sampling.n = 2
                o.sampling.maxNewTokens = 6
                o.sampling.seed = 11
                o.threads = 2
                try GenerateJob.run(o)
                let lines = try String(contentsOf: o.output!, encoding: .utf8).split(separator: "\n")
                #expect(lines.count == 4)
                for (k, line) in lines.enumerated() {
                    let obj = try #require(try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8)).object)
                    #expect(obj["prompt_index"]?.int == k / 2 && obj["sample_index"]?.int == k % 2)
                    let ids = obj["response_ids"]?.array ?? []
                    #expect(obj["logprobs"]?.array?.count == ids.count && !ids.isEmpty)
                    #expect(obj["response"]?.string != nil)
                    #expect(["eos", "stop", "length"].contains(obj["finish_reason"]?.string ?? ""))
                }
                for (text, line) in [("{\"prompt_ids\": [0, 5000]}", 2), ("not json", 2), ("{\"prompt_ids\": []}", 2),
                                     ("{\"prompt\": \"x\", \"prompt_ids\": [1]}", 2), ("{\"other\": 1}", 2)] {
                    try Data("{\"prompt_ids\": [0]}\n\(text)\n".utf8).write(to: input)
                    do {
                        try GenerateJob.run(o)
                        Issue.record("no error for \(text)")
                    } catch let e as SamplingError {
                        #expect(e.description.contains("prompts.jsonl:\(line):"), "\(e.description)")
                    }
                }
            }
        }
    }
}
