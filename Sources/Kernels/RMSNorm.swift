// RMSNorm forward and backward, as HF `LlamaRMSNorm` (float32):
//   y = w ⊙ x · r,  r = 1 / sqrt(mean(x²) + eps)   (eps inside the sqrt; weight `w`, not `1 + w`)
// Shapes: x, y, dx, dy [N, C]; w, dw [C]; rstd [N] (saved by forward for backward).
// Backward: with g = dy ⊙ w,  dx = r·g − x · r³/C · Σ(g ⊙ x);  dw += Σ_rows dy ⊙ x · r.

import Foundation

/// y[N, C] = RMSNorm(x) · w; stores r per row in `rstd`.
public func rmsnormForward(
    y: FloatPtr, rstd: FloatPtr, x: ConstFloatPtr, w: ConstFloatPtr, rows: Int, channels c: Int, eps: Float
) {
    parallelRows(rows) { range in
        rmsnormRows(y: y, rstd: rstd, x: x, w: w, rows: range, channels: c, eps: eps)
    }
}

/// `rmsnormForward` for the given rows, on the calling thread.
@inline(__always)
public func rmsnormRows(
    y: FloatPtr, rstd: FloatPtr, x: ConstFloatPtr, w: ConstFloatPtr, rows: Range<Int>, channels c: Int, eps: Float
) {
    for n in rows {
        let xr = x + n * c, yr = y + n * c
        let r = 1 / (vdot(xr, xr, c) / Float(c) + eps).squareRoot()
        rstd[n] = r
        for i in 0..<c { yr[i] = w[i] * (xr[i] * r) }
    }
}

/// Backward of `rmsnormForward`: dx[N, C] = (or +=, when `accumulate`) and dw[C] += (skipped when
/// `dw` is nil: a frozen weight).
/// `scratch` holds `scratchParts · C` floats for the weight-gradient partial sums.
public func rmsnormBackward(
    dx: FloatPtr, dw: FloatPtr?, dy: ConstFloatPtr, x: ConstFloatPtr, w: ConstFloatPtr, rstd: ConstFloatPtr,
    rows: Int, channels c: Int, accumulate: Bool, scratch: FloatPtr, scratchParts: Int
) {
    // dx: rows are independent.
    parallelRows(rows) { range in
        for n in range {
            let xr = x + n * c, dyr = dy + n * c, dxr = dx + n * c
            let r = rstd[n]
            var gx: Float = 0
            for i in 0..<c { gx += dyr[i] * w[i] * xr[i] }
            let k = gx * r * r * r / Float(c)
            if accumulate {
                for i in 0..<c { dxr[i] += r * dyr[i] * w[i] - k * xr[i] }
            } else {
                for i in 0..<c { dxr[i] = r * dyr[i] * w[i] - k * xr[i] }
            }
        }
    }
    // dw: reduce over rows in a fixed split that depends only on `rows` (not on the thread count),
    // then fold the partials in order, so the result is the same bits for any thread count.
    guard let dw else { return }
    let parts = max(1, min(8, rows / 16, scratchParts))
    scratch.update(repeating: 0, count: parts * c)
    parallelFor(parts) { p in
        let acc = scratch + p * c
        for n in (rows * p / parts)..<(rows * (p + 1) / parts) {
            let xr = x + n * c, dyr = dy + n * c
            let r = rstd[n]
            for i in 0..<c { acc[i] += dyr[i] * xr[i] * r }
        }
    }
    for p in 0..<parts { vadd(dw, scratch + p * c, c) }
}

/// Plain-loop twin of `rmsnormForward` (Double accumulation), the test oracle.
public func rmsnormForwardNaive(
    y: FloatPtr, rstd: FloatPtr, x: ConstFloatPtr, w: ConstFloatPtr, rows: Int, channels c: Int, eps: Float
) {
    for n in 0..<rows {
        var ss = 0.0
        for i in 0..<c { ss += Double(x[n * c + i]) * Double(x[n * c + i]) }
        let r = 1 / (ss / Double(c) + Double(eps)).squareRoot()
        rstd[n] = Float(r)
        for i in 0..<c { y[n * c + i] = Float(Double(w[i]) * Double(x[n * c + i]) * r) }
    }
}

/// Plain-loop twin of `rmsnormBackward` (always overwrites dx, accumulates dw).
public func rmsnormBackwardNaive(
    dx: FloatPtr, dw: FloatPtr, dy: ConstFloatPtr, x: ConstFloatPtr, w: ConstFloatPtr, rstd: ConstFloatPtr,
    rows: Int, channels c: Int
) {
    for n in 0..<rows {
        let r = Double(rstd[n])
        var gx = 0.0
        for i in 0..<c { gx += Double(dy[n * c + i]) * Double(w[i]) * Double(x[n * c + i]) }
        for i in 0..<c {
            let xi = Double(x[n * c + i]), gi = Double(dy[n * c + i]) * Double(w[i])
            dx[n * c + i] = Float(r * gi - xi * r * r * r * gx / Double(c))
            dw[i] += Float(Double(dy[n * c + i]) * xi * r)
        }
    }
}
