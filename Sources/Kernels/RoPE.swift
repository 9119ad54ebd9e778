// Rotary position embedding in HF's "rotate_half" (GPT-NeoX) layout, as `apply_rotary_pos_emb`
// in transformers' modeling_llama.py: dimension i rotates with i + D/2 (not interleaved pairs).
//   y[:h] = x[:h]·cos − x[h:]·sin,  y[h:] = x[h:]·cos + x[:h]·sin,   h = D/2
// Backward is the rotation by −angle. Tables follow HF's default rope in float32:
//   inv_freq[i] = 1 / theta^(2i/D),  angle[t, i] = Float(t) · inv_freq[i].

import Foundation

/// cos/sin tables [maxT, D/2] for positions 0..<maxT.
public struct RoPETable: Sendable {
    public let headDim: Int
    public let maxPositions: Int
    public let cos: [Float]
    public let sin: [Float]

    public init(headDim: Int, theta: Float, maxPositions: Int) {
        require(headDim % 2 == 0, "head_dim must be even for RoPE")
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        var invFreq = [Float](repeating: 0, count: half)
        for i in 0..<half {
            invFreq[i] = 1 / powf(theta, Float(2 * i) / Float(headDim))
        }
        var c = [Float](repeating: 0, count: maxPositions * half)
        var s = c
        for t in 0..<maxPositions {
            for i in 0..<half {
                let a = Float(t) * invFreq[i]
                c[t * half + i] = Foundation.cos(a)
                s[t * half + i] = Foundation.sin(a)
            }
        }
        cos = c
        sin = s
    }
}

/// Rotates `heads` head vectors of size D in each of `rows` rows, in place.
/// Row n holds position `n % seqLen`; head j of row n starts at `x + n·stride + j·D`.
/// `inverse` applies the transpose rotation (the backward pass).
public func ropeApply(
    _ x: FloatPtr, table: RoPETable, rows: Int, seqLen: Int, stride: Int, heads: Int, inverse: Bool = false
) {
    let d = table.headDim, half = d / 2
    table.cos.withUnsafeBufferPointer { cosb in
        table.sin.withUnsafeBufferPointer { sinb in
            let cp = cosb.baseAddress!, sp = sinb.baseAddress!
            parallelRows(rows) { range in
                for n in range {
                    let t = n % seqLen
                    let cr = cp + t * half, sr = sp + t * half
                    for j in 0..<heads {
                        let v = x + n * stride + j * d
                        for i in 0..<half {
                            let a = v[i], b = v[i + half]
                            let s = inverse ? -sr[i] : sr[i]
                            v[i] = a * cr[i] - b * s
                            v[i + half] = b * cr[i] + a * s
                        }
                    }
                }
            }
        }
    }
}

/// Plain-loop twin of `ropeApply` (computes the angle in Double from the same float32 inv_freq).
public func ropeApplyNaive(
    _ x: FloatPtr, headDim d: Int, theta: Float, rows: Int, seqLen: Int, stride: Int, heads: Int,
    inverse: Bool = false
) {
    let half = d / 2
    for n in 0..<rows {
        let t = n % seqLen
        for j in 0..<heads {
            let v = x + n * stride + j * d
            for i in 0..<half {
                let f = 1 / powf(theta, Float(2 * i) / Float(d))
                let ang = Double(Float(t) * f)
                let c = Foundation.cos(ang), s = (inverse ? -1 : 1) * Foundation.sin(ang)
                let a = Double(v[i]), b = Double(v[i + half])
                v[i] = Float(a * c - b * s)
                v[i + half] = Float(b * c + a * s)
            }
        }
    }
}
