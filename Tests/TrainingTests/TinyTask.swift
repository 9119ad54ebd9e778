// A tiny random Llama and a small synthetic token task for the learning and invariant tests.
//
// Vocabulary: 0 BOS, 1 EOS, 2 PAD, content tokens 3..<V. The rule to learn is "count on":
// succ(x) = the next content token (wrapping). A prompt is BOS and `promptContent` random content
// tokens; the good completion continues the prompt's last token with succ, succ², succ³ and EOS;
// a bad completion is three random content tokens and EOS. Every draw comes from a seeded Philox
// stream, so the data set is fixed.

import Foundation
import Kernels
import Model
import TestSupport
@testable import Training

enum TinyTask {
    static let vocab = 32
    static let content = 3..<vocab
    static let promptContent = 3

    /// V=32, C=32, 2 layers, 4 query heads sharing 2 kv heads (D=8), F=64, untied.
    static func config(initializerRange: Double = 0.02) throws -> LlamaConfig {
        let raw: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab, "hidden_size": 32,
            "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 64,
            "initializer_range": initializerRange, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2,
        ]
        return try LlamaConfig.parse(JSONSerialization.data(withJSONObject: raw), source: "tiny-config")
    }

    /// Writes a fresh random model directory `dir` (seed `seed`).
    static func writeModel(_ dir: URL, seed: UInt64 = 7) throws {
        let c = try config()
        try ModelDirectory.save(config: c, parameters: ModelDirectory.randomInit(config: c, seed: seed), to: dir,
                                copyingAuxiliaryFilesFrom: nil)
    }

    static func succ(_ x: Int32) -> Int32 { Int32(content.lowerBound) + (x - Int32(content.lowerBound) + 1) % Int32(content.count) }

    /// Example `i` of stream `stream`: prompt, good completion, bad completion.
    static func example(_ i: Int, stream: UInt64) -> (prompt: [Int32], good: [Int32], bad: [Int32]) {
        let rng = Philox(seed: 2024, stream: stream)
        func draw(_ k: Int) -> Int32 {
            Int32(content.lowerBound + Int(rng.block(UInt64(i * 16 + k)).0 % UInt32(content.count)))
        }
        let prompt: [Int32] = [0] + (0..<promptContent).map { draw($0) }
        let x = prompt.last!
        let good = [succ(x), succ(succ(x)), succ(succ(succ(x))), 1]
        var bad = (0..<3).map { draw(8 + $0) }
        if bad[0] == good[0] { bad[0] = succ(succ(bad[0])) }
        return (prompt, good, bad + [1])
    }

    static func completions(_ n: Int, stream: UInt64) -> [CompletionExample] {
        (0..<n).map { let e = example($0, stream: stream); return CompletionExample(prompt: e.prompt, completion: e.good, line: $0 + 1) }
    }

    static func preferences(_ n: Int, stream: UInt64) -> [PreferenceExample] {
        (0..<n).map { let e = example($0, stream: stream)
            return PreferenceExample(prompt: e.prompt, chosen: e.good, rejected: e.bad, line: $0 + 1) }
    }

    static func pairs(_ n: Int, stream: UInt64) -> [PairExample] {
        (0..<n).map { let e = example($0, stream: stream)
            return PairExample(chosen: e.prompt + e.good, rejected: e.prompt + e.bad, line: $0 + 1) }
    }

    /// JSON lines of `_ids` records.
    static func jsonl(_ records: [[String: [Int32]]]) -> String {
        records.map { r in
            "{" + r.keys.sorted().map { "\"\($0)\": [\(r[$0]!.map(String.init).joined(separator: ", "))]" }.joined(separator: ", ") + "}\n"
        }.joined()
    }

    static func writeCompletions(_ ex: [CompletionExample], to url: URL) throws {
        try jsonl(ex.map { ["prompt_ids": $0.prompt, "completion_ids": $0.completion] }).write(to: url, atomically: true, encoding: .utf8)
    }

    static func writePreferences(_ ex: [PreferenceExample], to url: URL) throws {
        try jsonl(ex.map { ["prompt_ids": $0.prompt, "chosen_ids": $0.chosen, "rejected_ids": $0.rejected] })
            .write(to: url, atomically: true, encoding: .utf8)
    }

    static func writePairs(_ ex: [PairExample], to url: URL) throws {
        try jsonl(ex.map { ["chosen_ids": $0.chosen, "rejected_ids": $0.rejected] }).write(to: url, atomically: true, encoding: .utf8)
    }

    static func load(_ dir: URL) throws -> LlamaModel {
        let m = try ModelDirectory.load(dir)
        return LlamaModel(config: m.config, parameters: m.parameters)
    }

    /// Metric `key` of a metrics list.
    static func metric(_ m: [(String, Double)], _ key: String) -> Double { m.first { $0.0 == key }!.1 }
}
