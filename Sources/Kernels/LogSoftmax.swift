// Fused log-softmax + gather over a chunk of logit rows, and its backward.
//   logp[r] = logits[r, target[r]] − logsumexp(logits[r, :])
//   dlogits[r, :] = dlogp[r] · (onehot(target[r]) − softmax(logits[r, :]))
// Shapes: logits [R, V]; target, lse, logp, dlogp [R]. The caller bounds R so that a chunk of
// logits stays small; [B, T, V] is never materialised for a large vocabulary.

import Foundation

/// Computes lse[r] and logp[r] for R rows of logits.
public func logSoftmaxGatherForward(
    logp: FloatPtr, lse: FloatPtr, logits: ConstFloatPtr, target: UnsafePointer<Int32>, rows: Int, vocab v: Int
) {
    parallelRows(rows, minRowsPerTask: 4) { range in
        for r in range {
            let row = logits + r * v
            let m = vmax(row, v)
            let l: Float
            if m.isFinite {
                l = m + logf(vsumExpShifted(row, m, v))
            } else {
                l = m.isNaN ? .nan : m  // +inf or NaN logits poison the row; report it as non-finite
            }
            lse[r] = l
            logp[r] = row[Int(target[r])] - l
        }
    }
}

/// Overwrites `logits` with dlogits for R rows (in place: logits are not needed afterwards).
public func logSoftmaxGatherBackward(
    logits: FloatPtr, lse: ConstFloatPtr, dlogp: ConstFloatPtr, target: UnsafePointer<Int32>, rows: Int, vocab v: Int
) {
    parallelRows(rows, minRowsPerTask: 4) { range in
        for r in range {
            let row = logits + r * v
            let g = dlogp[r]
            if g == 0 {
                row.update(repeating: 0, count: v)
                continue
            }
            _ = vexpShifted(row, row, lse[r], v)  // row = softmax
            var i = 0
            let ng = -g
            while i < v { row[i] *= ng; i += 1 }
            row[Int(target[r])] += g
        }
    }
}

/// Plain-loop twin of `logSoftmaxGatherForward` (Double).
public func logSoftmaxGatherForwardNaive(
    logp: FloatPtr, lse: FloatPtr, logits: ConstFloatPtr, target: UnsafePointer<Int32>, rows: Int, vocab v: Int
) {
    for r in 0..<rows {
        let l = logSumExpNaive(logits + r * v, v)
        lse[r] = Float(l)
        logp[r] = Float(Double(logits[r * v + Int(target[r])]) - l)
    }
}

/// Plain-loop twin of `logSoftmaxGatherBackward` (Double).
public func logSoftmaxGatherBackwardNaive(
    logits: FloatPtr, lse: ConstFloatPtr, dlogp: ConstFloatPtr, target: UnsafePointer<Int32>, rows: Int, vocab v: Int
) {
    for r in 0..<rows {
        for i in 0..<v {
            let p = Foundation.exp(Double(logits[r * v + i]) - Double(lse[r]))
            logits[r * v + i] = Float(Double(dlogp[r]) * ((i == Int(target[r]) ? 1 : 0) - p))
        }
    }
}

/// Entropy −Σ_i p_i log p_i of softmax(logits) for R rows, given each row's log-sum-exp (from
/// `logSoftmaxGatherForward`): H = Σ_i p_i (lse − z_i), a sum of non-negative terms (no cancellation).
public func softmaxEntropyForward(entropy: FloatPtr, logits: ConstFloatPtr, lse: ConstFloatPtr, rows: Int, vocab v: Int) {
    parallelRows(rows, minRowsPerTask: 4) { range in
        for r in range {
            let row = logits + r * v, l = lse[r]
            var acc = SIMD16<Float>()
            var i = 0
            while i + 16 <= v {
                let z = load16(row + i)
                acc += exp16(z - l) * (l - z)
                i += 16
            }
            var s = acc.sum()
            while i < v { s += expf(row[i] - l) * (l - row[i]); i += 1 }
            entropy[r] = s
        }
    }
}

/// Plain-loop twin of `softmaxEntropyForward` (Double).
public func softmaxEntropyForwardNaive(entropy: FloatPtr, logits: ConstFloatPtr, rows: Int, vocab v: Int) {
    for r in 0..<rows {
        let l = logSumExpNaive(logits + r * v, v)
        var h = 0.0
        for i in 0..<v { h -= Foundation.exp(Double(logits[r * v + i]) - l) * (Double(logits[r * v + i]) - l) }
        entropy[r] = Float(h)
    }
}

/// log Σ_i e^x[i] over one row of n floats, in Double, max-shifted.
func logSumExpNaive(_ x: ConstFloatPtr, _ n: Int) -> Double {
    var m = -Double.infinity
    for i in 0..<n { m = max(m, Double(x[i])) }
    var z = 0.0
    for i in 0..<n { z += Foundation.exp(Double(x[i]) - m) }
    return m + Foundation.log(z)
}
