// Global L2 gradient-norm clipping as `torch.nn.utils.clip_grad_norm_` (norm_type 2):
//   total = sqrt(Σ g²) over every gradient ;  coef = min(1, max_norm / (total + 1e-6)) ;  g *= coef
// and the returned norm is the one BEFORE clipping (what the HF Trainer logs as `grad_norm`).
//
// The sum of squares runs over fixed chunks of the flat buffer (SIMD partial sums in Float inside
// a chunk, chunk totals added in Double in chunk order), so the norm is the same bits for any
// thread count. Training folds `coef` into the AdamW pass (`AdamW.update(gradScale:)`) instead of
// rewriting the gradients; `clipGradients` is the standalone form.

import Foundation
import Kernels

/// Gradient-norm clipping.
public enum GradientClipping {
    static let chunk = 1 << 15

    /// sqrt(Σ x²) over `count` floats, in a thread-independent order. Non-finite inputs give a
    /// non-finite norm (NaN or +inf), which callers treat as a refused step.
    public static func norm(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        let chunks = (n + chunk - 1) / chunk
        guard chunks > 0 else { return 0 }
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { part in
            parallelRows(chunks, minRowsPerTask: 4) { r in
                for c in r {
                    let lo = c * chunk, hi = min(n, lo + chunk)
                    part[c] = Double(vdot(x + lo, x + lo, hi - lo))
                }
            }
        }
        var s = 0.0
        for p in partial { s += p }
        return Float(s.squareRoot())
    }

    /// Global norm over several tensors (treated as one concatenated vector).
    public static func norm(_ tensors: [UnsafeBufferPointer<Float>]) -> Float {
        var s = 0.0
        for t in tensors where t.count > 0 {
            let v = Double(norm(t.baseAddress!, count: t.count))
            s += v * v
        }
        return Float(s.squareRoot())
    }

    /// torch's coefficient: min(1, maxNorm / (norm + 1e-6)), computed in float32 as torch does.
    public static func coefficient(norm: Float, maxNorm: Float) -> Float {
        min(1, maxNorm / (norm + 1e-6))
    }

    /// `clip_grad_norm_` over `tensors` in place; returns the norm before clipping.
    @discardableResult
    public static func clipGradients(_ tensors: [UnsafeMutableBufferPointer<Float>], maxNorm: Float) -> Float {
        let total = norm(tensors.map { UnsafeBufferPointer($0) })
        let coef = coefficient(norm: total, maxNorm: maxNorm)
        if coef < 1 {
            for t in tensors { for i in t.indices { t[i] *= coef } }
        }
        return total
    }
}
