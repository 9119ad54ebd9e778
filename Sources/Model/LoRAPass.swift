// The LoRA products of a forward and backward pass, every one a cblas_sgemm on preallocated memory.
//
// For one adapted projection with input x [N, in], output rows y [N, out] (a column slice of the
// base group's output, row stride = the group's width) and u = x Aᵀ [N, r] kept for the backward:
//   forward   y  += s · u Bᵀ
//   backward  dB += s · dyᵀ u,   h = dy B [N, r],   dA += s · hᵀ x,   dx += s · h A
// The base path's dx = dy W is computed by the model as before; its weight gradient is not.

import Kernels

/// An adapter bound to activation memory for batches of up to `maxRows` rows: what a forward pass
/// with the adapter on needs (pass it to `LlamaModel.forward` / `backward`; pass nil for the base).
public final class LoRAActivations: @unchecked Sendable {
    public let adapter: LoRAAdapter
    public let maxRows: Int
    private let memory: FloatPtr
    /// u = x Aᵀ [maxRows, r] of each module (same order as `adapter.modules`).
    private let u: [FloatPtr]
    /// h = dy B [maxRows, r], backward scratch.
    private let h: FloatPtr

    public init(adapter: LoRAAdapter, maxRows: Int) {
        self.adapter = adapter
        self.maxRows = maxRows
        let block = maxRows * adapter.config.r
        let n = adapter.modules.count + 1
        let memory = FloatPtr.allocate(capacity: max(1, n * block))
        memory.initialize(repeating: 0, count: max(1, n * block))
        self.memory = memory
        u = (0..<adapter.modules.count).map { memory + $0 * block }
        h = memory + adapter.modules.count * block
    }

    deinit { memory.deallocate() }

    /// Bytes held.
    public var byteCount: Int { (adapter.modules.count + 1) * maxRows * adapter.config.r * 4 }

    /// y[:, column ..< column + out] += s · (x Aᵀ) Bᵀ for every adapted module of `group` in `layer`.
    func forward(layer: Int, group: LoRAGroup, x: ConstFloatPtr, y: FloatPtr, rows: Int, yStride: Int) {
        require(rows <= maxRows, "LoRA activations hold \(maxRows) rows, the batch has \(rows)")
        let r = adapter.config.r, s = adapter.config.scaling, w = adapter.weights.base
        for m in adapter.byGroup[layer][group.rawValue] {
            let um = u[m.index]
            sgemm(.none, .transposed, m: rows, n: r, k: m.inDim, a: x, lda: m.inDim, b: w + m.a, ldb: m.inDim, c: um, ldc: r)
            sgemm(.none, .transposed, m: rows, n: m.outDim, k: r, alpha: s, a: um, lda: r, b: w + m.b, ldb: r,
                  beta: 1, c: y + m.column, ldc: yStride)
        }
    }

    /// Adds the gradients of A and B of `group`'s modules into `gradients` (the adapter's layout) and
    /// s · (dy B) A into dx, given the output gradient rows dy (stride `dyStride`) and the input x.
    func backward(layer: Int, group: LoRAGroup, dy: ConstFloatPtr, dyStride: Int, x: ConstFloatPtr, dx: FloatPtr,
                  rows: Int, gradients g: FloatPtr) {
        let r = adapter.config.r, s = adapter.config.scaling, w = adapter.weights.base
        for m in adapter.byGroup[layer][group.rawValue] {
            let um = u[m.index], dym = dy + m.column
            sgemm(.transposed, .none, m: m.outDim, n: r, k: rows, alpha: s, a: dym, lda: dyStride, b: um, ldb: r,
                  beta: 1, c: g + m.b, ldc: r)
            sgemm(.none, .none, m: rows, n: r, k: m.outDim, a: dym, lda: dyStride, b: w + m.b, ldb: r, c: h, ldc: r)
            sgemm(.transposed, .none, m: r, n: m.inDim, k: rows, alpha: s, a: h, lda: r, b: x, ldb: m.inDim,
                  beta: 1, c: g + m.a, ldc: m.inDim)
            sgemm(.none, .none, m: rows, n: m.inDim, k: r, alpha: s, a: h, lda: r, b: w + m.a, ldb: m.inDim,
                  beta: 1, c: dx, ldc: m.inDim)
        }
    }
}

extension LoRAActivations {
    /// Refuses a base of another shape than the adapter's, or a batch larger than the activations.
    func check(model c: LlamaConfig, rows: Int) throws {
        let a = adapter.modelConfig
        guard a.numLayers == c.numLayers, a.hiddenSize == c.hiddenSize, a.attentionWidth == c.attentionWidth,
              a.numKVHeads * a.headDim == c.numKVHeads * c.headDim, a.intermediateSize == c.intermediateSize else {
            throw ModelError("the LoRA adapter was made for a base with \(a.numLayers) layers, hidden \(a.hiddenSize), intermediate \(a.intermediateSize); this base has \(c.numLayers), \(c.hiddenSize), \(c.intermediateSize): use the adapter with its own base")
        }
        guard (adapter.scoreOffset != nil) == (c.head == .score) else {
            throw ModelError(c.head == .score
                ? "the LoRA adapter was made for a causal LM (task_type CAUSAL_LM, no score head), but this base is a reward model; use a SEQ_CLS adapter (e.g. from `rondo rm train --lora-r`)"
                : "the LoRA adapter was made for a reward model (task_type SEQ_CLS, its own score head), but this base is a causal LM; load it on a reward model")
        }
        guard rows <= maxRows else {
            throw ModelError("batch of \(rows) rows exceeds the LoRA activations (\(maxRows) rows)")
        }
    }
}
