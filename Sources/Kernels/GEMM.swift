// Matrix products through OpenBLAS `cblas_sgemm`, row-major throughout.
//
// Every linear layer in Rondo stores its weight as HF does, W[out, in], and computes y = x·Wᵀ.
// The three products a linear layer needs (forward, input gradient, weight gradient) are the
// three transpose combinations below; attention adds the fourth (Aᵀ·Bᵀ is never needed).
// Shapes: x[N, in], W[out, in], y[N, out].

import CBLAS

/// Which operand of a product is read transposed.
public enum GEMMTranspose: Sendable {
    case none, transposed
    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C, row-major with leading dimensions.
@inline(__always)
public func sgemm(
    _ transA: GEMMTranspose, _ transB: GEMMTranspose, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        // BLAS leaves C untouched for k = 0 only when beta = 1; make the contract explicit.
        if beta != 1 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
        }
        return
    }
    cblas_sgemm(
        CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k), alpha,
        a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Linear forward: y[N, out] = x[N, in] · W[out, in]ᵀ (+ beta · y).
@inline(__always)
public func linearForward(
    y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
    rows: Int, inDim: Int, outDim: Int, beta: Float = 0
) {
    sgemm(.none, .transposed, m: rows, n: outDim, k: inDim, a: x, lda: inDim, b: w, ldb: inDim,
          beta: beta, c: y, ldc: outDim)
}

/// Linear backward. dx[N, in] (= or +=) dy[N, out] · W[out, in]; dW[out, in] += dy[N, out]ᵀ · x[N, in].
/// `dx` may be nil when the input gradient is not needed (e.g. the embedding lookup's input);
/// `dw` is nil when the weight is frozen (a LoRA base), which skips that product.
@inline(__always)
public func linearBackward(
    dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
    x: UnsafePointer<Float>, w: UnsafePointer<Float>, rows: Int, inDim: Int, outDim: Int,
    accumulateDx: Bool = false
) {
    if let dx {
        sgemm(.none, .none, m: rows, n: inDim, k: outDim, a: dy, lda: outDim, b: w, ldb: inDim,
              beta: accumulateDx ? 1 : 0, c: dx, ldc: inDim)
    }
    guard let dw else { return }
    sgemm(.transposed, .none, m: outDim, n: inDim, k: rows, a: dy, lda: outDim, b: x, ldb: inDim,
          beta: 1, c: dw, ldc: inDim)
}

/// Plain-loop twin of `sgemm`, the oracle for tests (accumulates in Double).
public func sgemmNaive(
    _ transA: GEMMTranspose, _ transB: GEMMTranspose, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let av = transA == .none ? a[i * lda + p] : a[p * lda + i]
                let bv = transB == .none ? b[p * ldb + j] : b[j * ldb + p]
                s += Double(av) * Double(bv)
            }
            let prior = beta == 0 ? 0 : beta * c[i * ldc + j]
            c[i * ldc + j] = alpha * Float(s) + prior
        }
    }
}

/// Sets the number of OpenBLAS threads (global to the process).
public func setBLASThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
