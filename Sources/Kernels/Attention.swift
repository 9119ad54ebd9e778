// Causal grouped-query softmax attention, as HF `eager_attention_forward` in modeling_llama.py
// (scores scaled by 1/sqrt(D), causal mask, float32 softmax, query head j reads kv head j / (NH/NKV)).
//
// Dimension letters: B batch, T sequence, NH query heads, NKV kv heads, D head dim, C = NH·D.
// qkv [B·T, QKV] is the fused projection output, QKV = (NH + 2·NKV)·D: query head j at column
// j·D, kv head g's key at (NH + g)·D and value at (NH + NKV + g)·D. out [B·T, C];
// probs [B, NH, T, T] (saved for backward; entries above the diagonal are 0).
// The QKᵀ and PV products run through sgemm, one (b, head) per call; Dispatch spreads the
// (b, head) units over threads while OpenBLAS runs each small product single-threaded.

import Foundation

/// The shape of one attention call.
public struct AttentionShape: Sendable {
    public var batch: Int, seqLen: Int, heads: Int, kvHeads: Int, headDim: Int
    public init(batch: Int, seqLen: Int, heads: Int, kvHeads: Int, headDim: Int) {
        require(heads % kvHeads == 0, "query heads must be a multiple of kv heads")
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

/// Query rows per causal block: block q attends to keys 0..<(q + 1)·causalBlock only, so the
/// products skip most of the masked upper triangle (the split depends only on T).
public let causalBlock = 64

/// Forward: out[B·T, C] and probs[B, NH, T, T] from qkv[B·T, QKV].
/// (b, head) pairs run in parallel on Dispatch, each with single-threaded sgemm calls.
public func attentionForward(out: FloatPtr, probs: FloatPtr, qkv: ConstFloatPtr, shape s: AttentionShape) {
    let t = s.seqLen, d = s.headDim, w = s.qkvWidth, c = s.outWidth
    let scale = 1 / Float(d).squareRoot()
    Threads.withSingleThreadedBLAS {
        parallelRows(s.batch * s.heads, minRowsPerTask: 1) { range in
            for unit in range {
                let b = unit / s.heads, h = unit % s.heads, g = s.kvHead(h)
                let rows = qkv + b * t * w
                let p = probs + unit * t * t
                for q0 in stride(from: 0, to: t, by: causalBlock) {
                    let q1 = min(t, q0 + causalBlock)  // query rows q0..<q1 see keys 0..<q1
                    sgemm(.none, .transposed, m: q1 - q0, n: q1, k: d, alpha: scale, a: rows + q0 * w + s.qCol(h),
                          lda: w, b: rows + s.kCol(g), ldb: w, c: p + q0 * t, ldc: t)
                    for i in q0..<q1 {
                        let pr = p + i * t
                        let m = vmax(pr, i + 1)
                        let z = vexpShifted(pr, pr, m, i + 1)
                        let inv = 1 / z
                        for j in 0...i { pr[j] *= inv }
                        if i + 1 < t { (pr + i + 1).update(repeating: 0, count: t - i - 1) }
                    }
                    sgemm(.none, .none, m: q1 - q0, n: d, k: q1, a: p + q0 * t, lda: t, b: rows + s.vCol(g), ldb: w,
                          c: out + (b * t + q0) * c + h * d, ldc: c)
                }
            }
        }
    }
}

/// Backward: dqkv[B·T, QKV] (overwritten) from dout[B·T, C]. `scratch` holds NH·T·T floats.
/// (b, kv head) groups run in parallel; within a group the query heads and causal blocks run in
/// order, so the accumulation into dK and dV has a fixed order.
public func attentionBackward(
    dqkv: FloatPtr, dout: ConstFloatPtr, probs: ConstFloatPtr, qkv: ConstFloatPtr, shape s: AttentionShape,
    scratch: FloatPtr
) {
    let t = s.seqLen, d = s.headDim, w = s.qkvWidth, c = s.outWidth
    let scale = 1 / Float(d).squareRoot()
    let groups = s.batch * s.kvHeads, perGroup = s.heads / s.kvHeads
    let workers = max(1, min(Threads.count, s.heads, groups))  // each worker owns T·T floats of scratch
    Threads.withSingleThreadedBLAS {
        parallelFor(workers) { worker in
            let dp = scratch + worker * t * t
            for unit in (groups * worker / workers)..<(groups * (worker + 1) / workers) {
                let b = unit / s.kvHeads, g = unit % s.kvHeads
                let rows = qkv + b * t * w, drows = dqkv + b * t * w, dob = dout + b * t * c
                for r in 0..<t {
                    (drows + r * w + s.kCol(g)).update(repeating: 0, count: d)
                    (drows + r * w + s.vCol(g)).update(repeating: 0, count: d)
                }
                for h in (g * perGroup)..<((g + 1) * perGroup) {
                    let p = probs + (b * s.heads + h) * t * t
                    for q0 in stride(from: 0, to: t, by: causalBlock) {
                        let q1 = min(t, q0 + causalBlock), m = q1 - q0
                        let pb = p + q0 * t, db = dp + q0 * t, dob0 = dob + q0 * c + h * d
                        // dP = dO·Vᵀ ;  dV += Pᵀ·dO   (keys 0..<q1)
                        sgemm(.none, .transposed, m: m, n: q1, k: d, a: dob0, lda: c, b: rows + s.vCol(g), ldb: w,
                              c: db, ldc: t)
                        sgemm(.transposed, .none, m: q1, n: d, k: m, a: pb, lda: t, b: dob0, ldb: c,
                              beta: 1, c: drows + s.vCol(g), ldc: w)
                        // dS = P ⊙ (dP − Σⱼ P·dP) over the causal part of each row.
                        for i in q0..<q1 {
                            let pr = p + i * t, dr = dp + i * t
                            let dotv = vdot(pr, dr, i + 1)
                            for j in 0...i { dr[j] = pr[j] * (dr[j] - dotv) }
                            if i + 1 < q1 { (dr + i + 1).update(repeating: 0, count: q1 - i - 1) }
                        }
                        // dQ = scale·dS·K ;  dK += scale·dSᵀ·Q
                        sgemm(.none, .none, m: m, n: d, k: q1, alpha: scale, a: db, lda: t, b: rows + s.kCol(g),
                              ldb: w, c: drows + q0 * w + s.qCol(h), ldc: w)
                        sgemm(.transposed, .none, m: q1, n: d, k: m, alpha: scale, a: db, lda: t,
                              b: rows + q0 * w + s.qCol(h), ldb: w, beta: 1, c: drows + s.kCol(g), ldc: w)
                    }
                }
            }
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
