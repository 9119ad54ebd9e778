// Causal grouped-query softmax attention, as HF `eager_attention_forward` in modeling_llama.py
// (scores scaled by 1/sqrt(D), causal mask, float32 softmax, query head j reads kv head j / (NH/NKV)).
//
// Dimension letters: B batch, T sequence, NH query heads, NKV kv heads, D head dim, C = NH·D.
// qkv [B·T, QKV] is the fused projection output, QKV = (NH + 2·NKV)·D: query head j at column
// j·D, kv head g's key at (NH + g)·D and value at (NH + NKV + g)·D. out [B·T, C];
// probs [B, NH, T, T] (saved for backward; entries above the diagonal are 0).
// The QKᵀ and PV products run through sgemm one (b, head) at a time on the calling thread
// (OpenBLAS threads them); the softmax runs row-parallel on Dispatch.

import Foundation

/// The shape of one attention call.
public struct AttentionShape: Sendable {
    public var batch: Int, seqLen: Int, heads: Int, kvHeads: Int, headDim: Int
    public init(batch: Int, seqLen: Int, heads: Int, kvHeads: Int, headDim: Int) {
        precondition(heads % kvHeads == 0, "query heads must be a multiple of kv heads")
        self.batch = batch; self.seqLen = seqLen; self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
    }
    /// Row width of the fused qkv buffer.
    public var qkvWidth: Int { (heads + 2 * kvHeads) * headDim }
    /// Row width of the attention output (C).
    public var outWidth: Int { heads * headDim }
    /// Floats needed for `probs` (and for the backward scratch of one batch row: heads·T·T).
    public var probsCount: Int { batch * heads * seqLen * seqLen }
    @inline(__always) func kvHead(_ h: Int) -> Int { h / (heads / kvHeads) }
    @inline(__always) func qCol(_ h: Int) -> Int { h * headDim }
    @inline(__always) func kCol(_ g: Int) -> Int { (heads + g) * headDim }
    @inline(__always) func vCol(_ g: Int) -> Int { (heads + kvHeads + g) * headDim }
}

/// Forward: out[B·T, C] and probs[B, NH, T, T] from qkv[B·T, QKV].
public func attentionForward(out: FloatPtr, probs: FloatPtr, qkv: ConstFloatPtr, shape s: AttentionShape) {
    let t = s.seqLen, d = s.headDim, w = s.qkvWidth, c = s.outWidth
    let scale = 1 / Float(d).squareRoot()
    for b in 0..<s.batch {
        let rows = qkv + b * t * w
        let pb = probs + b * s.heads * t * t
        for h in 0..<s.heads {
            let g = s.kvHead(h)
            sgemm(.none, .transposed, m: t, n: t, k: d, alpha: scale, a: rows + s.qCol(h), lda: w,
                  b: rows + s.kCol(g), ldb: w, c: pb + h * t * t, ldc: t)
        }
        parallelRows(s.heads * t, minRowsPerTask: 64) { range in
            for r in range {
                let i = r % t
                let p = pb + r * t
                let m = vmax(p, i + 1)
                let z = vexpShifted(p, p, m, i + 1)
                let inv = 1 / z
                for j in 0...i { p[j] *= inv }
                if i + 1 < t { (p + i + 1).update(repeating: 0, count: t - i - 1) }
            }
        }
        for h in 0..<s.heads {
            sgemm(.none, .none, m: t, n: d, k: t, a: pb + h * t * t, lda: t, b: rows + s.vCol(s.kvHead(h)), ldb: w,
                  c: out + b * t * c + h * d, ldc: c)
        }
    }
}

/// Backward: dqkv[B·T, QKV] (overwritten) from dout[B·T, C]. `scratch` holds NH·T·T floats.
public func attentionBackward(
    dqkv: FloatPtr, dout: ConstFloatPtr, probs: ConstFloatPtr, qkv: ConstFloatPtr, shape s: AttentionShape,
    scratch: FloatPtr
) {
    let t = s.seqLen, d = s.headDim, w = s.qkvWidth, c = s.outWidth
    let scale = 1 / Float(d).squareRoot()
    for b in 0..<s.batch {
        let rows = qkv + b * t * w, drows = dqkv + b * t * w, dob = dout + b * t * c
        let pb = probs + b * s.heads * t * t
        // dK and dV accumulate over the query heads of a group: start from zero.
        for r in 0..<t { (drows + r * w + s.kCol(0)).update(repeating: 0, count: 2 * s.kvHeads * d) }
        for h in 0..<s.heads {
            let g = s.kvHead(h)
            // dP = dO·Vᵀ ;  dV += Pᵀ·dO
            sgemm(.none, .transposed, m: t, n: t, k: d, a: dob + h * d, lda: c, b: rows + s.vCol(g), ldb: w,
                  c: scratch + h * t * t, ldc: t)
            sgemm(.transposed, .none, m: t, n: d, k: t, a: pb + h * t * t, lda: t, b: dob + h * d, ldb: c,
                  beta: 1, c: drows + s.vCol(g), ldc: w)
        }
        // dS = P ⊙ (dP − Σⱼ P·dP), causal rows only.
        parallelRows(s.heads * t, minRowsPerTask: 64) { range in
            for r in range {
                let i = r % t
                let p = pb + r * t, dp = scratch + r * t
                let dotv = vdot(p, dp, i + 1)
                for j in 0...i { dp[j] = p[j] * (dp[j] - dotv) }
                if i + 1 < t { (dp + i + 1).update(repeating: 0, count: t - i - 1) }
            }
        }
        for h in 0..<s.heads {
            let g = s.kvHead(h)
            // dQ = scale·dS·K ;  dK += scale·dSᵀ·Q
            sgemm(.none, .none, m: t, n: d, k: t, alpha: scale, a: scratch + h * t * t, lda: t, b: rows + s.kCol(g),
                  ldb: w, c: drows + s.qCol(h), ldc: w)
            sgemm(.transposed, .none, m: t, n: d, k: t, alpha: scale, a: scratch + h * t * t, lda: t,
                  b: rows + s.qCol(h), ldb: w, beta: 1, c: drows + s.kCol(g), ldc: w)
        }
    }
}

/// Plain-loop twin of `attentionForward` (Double), the test oracle.
public func attentionForwardNaive(out: FloatPtr, probs: FloatPtr, qkv: ConstFloatPtr, shape s: AttentionShape) {
    let t = s.seqLen, d = s.headDim, w = s.qkvWidth, c = s.outWidth
    let scale = 1 / Double(d).squareRoot()
    for b in 0..<s.batch {
        for h in 0..<s.heads {
            let g = s.kvHead(h)
            for i in 0..<t {
                var sc = [Double](repeating: -.infinity, count: t)
                for j in 0...i {
                    var dot = 0.0
                    for e in 0..<d {
                        dot += Double(qkv[(b * t + i) * w + s.qCol(h) + e]) * Double(qkv[(b * t + j) * w + s.kCol(g) + e])
                    }
                    sc[j] = dot * scale
                }
                let m = sc[0...i].max()!
                let z = sc[0...i].reduce(0) { $0 + Foundation.exp($1 - m) }
                for j in 0..<t {
                    probs[((b * s.heads + h) * t + i) * t + j] = j <= i ? Float(Foundation.exp(sc[j] - m) / z) : 0
                }
                for e in 0..<d {
                    var acc = 0.0
                    for j in 0...i {
                        acc += Foundation.exp(sc[j] - m) / z * Double(qkv[(b * t + j) * w + s.vCol(g) + e])
                    }
                    out[(b * t + i) * c + h * d + e] = Float(acc)
                }
            }
        }
    }
}
