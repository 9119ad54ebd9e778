// Shared models and helpers of the sampling tests.

import Foundation
import Kernels
import Model
import Sampling
import Testing
import TestSupport

/// Every sampling suite nests in this one and runs one test at a time: some tests change the
/// process-wide thread count.
@Suite(.serialized) struct SamplingTests {}

enum Models {
    /// The oracle's `LlamaForCausalLM` (V 320, C 64, 2 layers, GQA 4/2, EOS 1).
    static let policy: LlamaModel = {
        let m = try! ModelDirectory.load(Fixtures.policy)
        return LlamaModel(config: m.config, parameters: m.parameters)
    }()

    /// A random one-layer model with the bench S widths (C 256, F 688, NH 8, NKV 4, D 32) and
    /// V 1024: products big enough for OpenBLAS's blocked path at a few rows, and K = 688, which
    /// OpenBLAS's own threading splits differently from its single-threaded driver.
    static let wide: LlamaModel = {
        let json = """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 1024,
             "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 1,
             "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 32,
             "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
             "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "initializer_range": 0.1,
             "tie_word_embeddings": false}
            """
        let config = try! LlamaConfig.parse(Data(json.utf8), source: "wide test config")
        return LlamaModel(config: config, parameters: ModelDirectory.randomInit(config: config, seed: 77))
    }()
}

/// `count` prompts of random lengths in `lengths`, token ids in 3..<V (deterministic).
func randomPrompts(_ count: Int, lengths: ClosedRange<Int>, vocab: Int, stream: UInt64 = 1) -> [[Int32]] {
    let rng = Philox(seed: 2024, stream: stream)
    var k: UInt64 = 0
    func next(_ n: Int) -> Int { defer { k += 1 }; return Int(rng.block(k).0 % UInt32(n)) }
    return (0..<count).map { _ in
        let len = lengths.lowerBound + next(lengths.count)
        return (0..<len).map { _ in Int32(3 + next(vocab - 3)) }
    }
}

/// Runs `body` with `n` threads, then restores the previous count.
func withThreads<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
    let old = Threads.count
    Threads.configure(n)
    defer { Threads.configure(old) }
    return try body()
}

/// Samples of `prompts` under `config` with `batch` rows in flight and `threads` threads.
/// With `adapter`, the sampler merges it into its own weight copy (a campaign's LoRA sampling).
func sample(_ model: LlamaModel, adapter: LoRAAdapter? = nil, _ prompts: [[Int32]], _ config: SamplingConfig, batch: Int,
            threads: Int, tokenBytes: ((Int32) -> [UInt8])? = nil) throws -> [Sample] {
    var c = config
    c.batchSize = batch
    return try withThreads(threads) {
        try Sampler(model: model, adapter: adapter, config: c, tokenBytes: tokenBytes).generate(prompts)
    }
}
