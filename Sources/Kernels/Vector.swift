// Vectorised reductions and updates on contiguous float rows.
//
// Swift only vectorises float reductions with explicit SIMD accumulators, so every reduction
// here keeps four SIMD16 partial sums and folds them in a fixed order (deterministic).

public typealias FloatPtr = UnsafeMutablePointer<Float>
public typealias ConstFloatPtr = UnsafePointer<Float>

/// 16 floats from p (any alignment).
@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

/// Stores 16 floats at p (any alignment).
@inline(__always)
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// Σ a[i]·b[i] over n elements.
@inline(__always)
public func vdot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var s0 = SIMD16<Float>(), s1 = SIMD16<Float>()
    var i = 0
    while i + 32 <= n {
        s0 += load16(a + i) * load16(b + i)
        s1 += load16(a + i + 16) * load16(b + i + 16)
        i += 32
    }
    if i + 16 <= n {
        s0 += load16(a + i) * load16(b + i)
        i += 16
    }
    var s = (s0 + s1).sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// Σ a[i] over n elements.
@inline(__always)
public func vsum(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
    var s0 = SIMD16<Float>()
    var i = 0
    while i + 16 <= n { s0 += load16(a + i); i += 16 }
    var s = s0.sum()
    while i < n { s += a[i]; i += 1 }
    return s
}

/// max over n ≥ 1 elements.
@inline(__always)
public func vmax(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
    var i = 0
    var m = -Float.infinity
    if n >= 16 {
        var mv = load16(a)
        i = 16
        while i + 16 <= n {
            let v = load16(a + i)
            mv.replace(with: v, where: v .> mv)
            i += 16
        }
        m = mv.max()
    }
    while i < n { if a[i] > m { m = a[i] }; i += 1 }
    return m
}

/// y[i] += alpha · x[i].
@inline(__always)
public func vaxpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n {
        store16(load16(y + i) + alpha * load16(x + i), y + i)
        i += 16
    }
    while i < n { y[i] += alpha * x[i]; i += 1 }
}

/// y[i] += x[i].
@inline(__always)
public func vadd(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n {
        store16(load16(y + i) + load16(x + i), y + i)
        i += 16
    }
    while i < n { y[i] += x[i]; i += 1 }
}

/// y[i] *= a.
@inline(__always)
public func vscale(_ y: UnsafeMutablePointer<Float>, _ a: Float, _ n: Int) {
    var i = 0
    while i + 16 <= n {
        store16(a * load16(y + i), y + i)
        i += 16
    }
    while i < n { y[i] *= a; i += 1 }
}

/// e^x for 16 lanes: Cephes `expf` (range reduction by ln 2 in two parts, degree-6 polynomial),
/// within 2 ulp of libm for x in [-87, 88]; inputs outside are clamped (e^-87 ≈ 1.6e-38).
/// Rounding uses the 1.5·2²³ trick because `rounded()` is a libcall without SSE4.1.
@inline(__always)
public func exp16(_ xin: SIMD16<Float>) -> SIMD16<Float> {
    var x = xin
    x.replace(with: 88, where: x .> 88)
    x.replace(with: -87, where: x .< -87)
    let magic: Float = 12_582_912  // 1.5 * 2^23
    let t = x * 1.442_695_04 + magic
    let n = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
    let fx = t - magic
    let r = x - fx * 0.693_359_375 + fx * 2.121_944_4e-4
    let z = r * r
    var y = SIMD16<Float>(repeating: 1.987_569_15e-4)
    y = y * r + 1.398_199_950_7e-3
    y = y * r + 8.333_451_907_3e-3
    y = y * r + 4.166_579_589_4e-2
    y = y * r + 1.666_666_545_9e-1
    y = y * r + 5.000_000_120_1e-1
    y = y * z + r + 1
    return y * unsafeBitCast((n &+ 127) &<< 23, to: SIMD16<Float>.self)
}

/// y[i] = exp(x[i] - shift) for n elements; returns Σ y[i] (fixed summation order). `y` may alias
/// `x`. Blocks of 16 through `exp16`'s arithmetic in vectors of the CPU's width (Sources/CKernels/exp.c).
@inline(__always)
public func vexpShifted(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ shift: Float, _ n: Int) -> Float {
    DecodeKernel.selected.expShifted(y: y, x: x, shift: shift, n: n)
}

/// Σ exp(x[i] - shift) without storing.
@inline(__always)
public func vsumExpShifted(_ x: UnsafePointer<Float>, _ shift: Float, _ n: Int) -> Float {
    var acc = SIMD16<Float>()
    var i = 0
    while i + 16 <= n {
        acc += exp16(load16(x + i) - shift)
        i += 16
    }
    var s = acc.sum()
    while i < n { s += expf(x[i] - shift); i += 1 }
    return s
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
