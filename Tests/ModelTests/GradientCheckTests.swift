// Finite-difference checks of the whole model's backward pass on a random tiny config with tied
// embeddings and grouped-query attention, for both the LM head and the score head; and the
// determinism contract (same inputs and thread count → same bits; across thread counts, float32
// rounding: see bitIdenticalAcrossRunsAtEachThreadCount).

import Foundation
import Kernels
import Model
import Testing
import TestSupport

/// A tiny random Llama: V=37, C=24, 2 layers, 4 query heads sharing 2 kv heads (D=6), F=40.
func tinyConfig(tied: Bool, head: ModelHead) throws -> LlamaConfig {
    var raw: [String: Any] = [
        "model_type": "llama", "vocab_size": 37, "hidden_size": 24, "intermediate_size": 40,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": tied,
        "max_position_embeddings": 64, "initializer_range": 0.3, "pad_token_id": 0,
    ]
    if head == .score { raw["architectures"] = ["LlamaForSequenceClassification"] }
    let data = try JSONSerialization.data(withJSONObject: raw)
    return try LlamaConfig.parse(data, source: "tiny-config")
}

/// A loss L = Σ c[n] · output[n] with fixed random coefficients, its value in Double.
func weightedOutput(_ model: LlamaModel, _ batch: TokenBatch, _ ws: LlamaWorkspace, _ coef: [Float]) throws -> Double {
    let out = try model.forward(batch, workspace: ws)
    return zip(out, coef).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}

@Suite struct GradientCheckTests {
    static let batch = TokenBatch(rows: [[1, 5, 9, 2, 30, 7, 7], [3, 36, 4, 11], [2, 2, 8, 19, 1]], pad: 0,
                                  scoreFrom: [2, 1, 3])

    @Test(arguments: [ModelHead.causalLM, .score])
    func finiteDifferences(head: ModelHead) throws {
        let config = try tinyConfig(tied: head == .causalLM, head: head)
        let params = ModelDirectory.randomInit(config: config, seed: 11)
        // Perturb the norms away from 1 so their gradients are exercised non-trivially.
        for e in params.layout.entries where e.shape.count == 1 {
            for i in 0..<e.count { params.base[e.offset + i] = 0.7 + 0.6 * Philox(seed: 3).uniform(UInt64(e.offset + i)) }
        }
        let model = LlamaModel(config: config, parameters: params)
        let b = Self.batch
        let ws = LlamaWorkspace(config: config, maxBatch: b.batch, maxSeqLen: b.seqLen)
        // Random weights on real positions only (losses never read padding; the pad embedding row is
        // zero, where RMSNorm is too curved for finite differences).
        let coef = (0..<(b.batch * b.seqLen)).map { n in
            n % b.seqLen < b.lengths[n / b.seqLen] ? Philox(seed: 5).normal(UInt64(n)) : 0
        }
        _ = try weightedOutput(model, b, ws, coef)
        let grads = ParameterBuffer(layout: model.layout)
        coef.withUnsafeBufferPointer { model.backward(b, outputGradient: $0, gradients: grads, workspace: ws) }

        let h: Float = 2e-3
        var checked = 0
        for e in model.layout.entries {
            let maxG = grads.view(e).map(abs).max() ?? 0
            #expect(maxG > 0, "\(e.name): gradient is identically zero")
            // Up to 6 entries per tensor, spread over it (always the largest one).
            let largest = grads.view(e).indices.max { abs(grads.view(e)[$0]) < abs(grads.view(e)[$1]) }!
            let picks = Set([largest] + (0..<5).map { ($0 * 7919 + 13) % e.count })
            for i in picks {
                let k = e.offset + i, orig = params.base[k]
                params.base[k] = orig + h
                let lp = try weightedOutput(model, b, ws, coef)
                params.base[k] = orig - h
                let lm = try weightedOutput(model, b, ws, coef)
                params.base[k] = orig
                let fd = (lp - lm) / Double(2 * h)
                let an = Double(grads.base[k])
                #expect(abs(fd - an) <= 1e-2 * Double(maxG) + 2e-3,
                        "\(e.name)[\(i)]: analytic \(an), finite difference \(fd)")
                checked += 1
            }
        }
        #expect(checked > 60)
    }

    /// Forward + backward repeated with the same thread count give identical bits, for 1 and for 2
    /// threads: that is the determinism contract (same inputs and thread count → same bits). Across
    /// thread counts the training products are OpenBLAS's, which may split an inner dimension
    /// differently with 1 and 2 threads (CPU-dependent: Zen/Haswell kernels do, SkylakeX ones did
    /// not), so there the outputs and gradients agree to float32 rounding, not bit for bit. (The
    /// sampler's decode products are Rondo's own fixed-shape calls and do match across thread
    /// counts: SamplingTests' sameSeedSameSamplesAcrossBatchSizesAndThreads.)
    @Test func bitIdenticalAcrossRunsAtEachThreadCount() throws {
        let config = try tinyConfig(tied: false, head: .causalLM)
        let model = LlamaModel(config: config, parameters: ModelDirectory.randomInit(config: config, seed: 2))
        let rows = (0..<8).map { r in (0..<40).map { Int32(Philox(seed: 9, stream: UInt64(r)).block(UInt64($0)).0 % 37) } }
        let b = TokenBatch(rows: rows, pad: 0)
        func run(threads: Int) throws -> (out: [Float], grad: [Float]) {
            Threads.configure(threads)
            defer { Threads.configure(ProcessInfo.processInfo.activeProcessorCount) }
            let ws = LlamaWorkspace(config: config, maxBatch: 8, maxSeqLen: 40)
            let out = Array(try model.forward(b, workspace: ws))
            let g = ParameterBuffer(layout: model.layout)
            let d = out.map { $0 == 0 ? 0 : Float(-1) / 300 }
            d.withUnsafeBufferPointer { model.backward(b, outputGradient: $0, gradients: g, workspace: ws) }
            return (out, Array(g.all))
        }
        func differing(_ x: [Float], _ y: [Float]) -> Int { zip(x, y).filter { $0.bitPattern != $1.bitPattern }.count }
        var first: (out: [Float], grad: [Float])?
        for threads in [1, 2] {
            let a = try run(threads: threads), again = try run(threads: threads)
            #expect(differing(a.out, again.out) == 0, "forward: \(differing(a.out, again.out)) values differ between two runs on \(threads) thread(s)")
            #expect(differing(a.grad, again.grad) == 0, "gradients: \(differing(a.grad, again.grad)) values differ between two runs on \(threads) thread(s)")
            if let f = first {
                expectClose(a.out, f.out, 1e-5, "forward on 2 threads against 1")
                expectClose(a.grad, f.grad, 1e-5, "gradients on 2 threads against 1")
            }
            first = a
        }
    }
}
