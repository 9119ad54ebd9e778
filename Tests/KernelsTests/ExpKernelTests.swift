// The vector exponential kernels (Sources/CKernels/exp.c) bit for bit: every variant this CPU runs
// against references written with Kernels' Swift `exp16`, the arithmetic they replace (and which
// the backward passes still use), on lengths with and without a scalar tail and on inputs that
// reach the clamps, overflow, underflow, infinities and NaN.

import Foundation
import Kernels
import Testing

/// The bits of `a` and `b` are identical, except that a NaN equals any NaN: x86 passes on the NaN of
/// a product's first operand, and compilers order a product's operands as they like, so the sign
/// of a NaN that meets another NaN (g · σ(g) for g = NaN) is not the arithmetic's to fix.
private func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
}

private func block(_ a: [Float], _ i: Int) -> SIMD16<Float> { SIMD16<Float>(a[i..<(i + 16)]) }

/// exp(x − shift) and its sum as the Swift code computed them: exp16 per block of 16 with a
/// SIMD16 accumulator reduced by `sum()`, then expf on the tail, added in order.
private func referenceExpShifted(_ x: [Float], shift: Float) -> ([Float], Float) {
    var y = x, acc = SIMD16<Float>(), i = 0
    while i + 16 <= x.count {
        let e = exp16(block(x, i) - shift)
        for l in 0..<16 { y[i + l] = e[l] }
        acc += e
        i += 16
    }
    var s = acc.sum()
    while i < x.count {
        y[i] = expf(x[i] - shift)
        s += y[i]
        i += 1
    }
    return (y, s)
}

/// SwiGLU as the Swift code computed it.
private func referenceSwiglu(g: [Float], u: [Float]) -> [Float] {
    var h = g, i = 0
    while i + 16 <= g.count {
        let gv = block(g, i), v = gv * (1 / (1 + exp16(-gv))) * block(u, i)
        for l in 0..<16 { h[i + l] = v[l] }
        i += 16
    }
    while i < g.count {
        h[i] = g[i] * (1 / (1 + expf(-g[i]))) * u[i]
        i += 1
    }
    return h
}

/// Inputs of length n: scaled normals, with the edge values spread through them.
private func inputs(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
    var x = randomArray(n, seed: seed, scale: scale)
    let edges: [Float] = [88, 88.5, -87, -87.5, 100, -100, 0, -0.0, .infinity, -.infinity, .nan, 1e-30, -1e-30]
    for (j, e) in edges.enumerated() where 7 * j < n { x[7 * j] = e }
    return x
}

@Suite struct ExpKernelTests {
    @Test(arguments: DecodeKernel.allCases.filter(\.isAvailable))
    func expShiftedMatchesTheSwiftArithmetic(kernel: DecodeKernel) {
        var mismatches: [String] = []
        for n in [0, 1, 15, 16, 17, 33, 96, 100, 4096 + 5] {
            for (scale, shift) in [(Float(1), Float(0)), (30, 2.5), (60, -40)] {
                let x = inputs(n, seed: UInt64(n * 7 + Int(scale)), scale: scale)
                let (expected, sum) = referenceExpShifted(x, shift: shift)
                var y = [Float](repeating: -1, count: n)
                let s = kernel.expShifted(y: &y, x: x, shift: shift, n: n)
                if !sameBits(y, expected) || s.bitPattern != sum.bitPattern {
                    mismatches.append("n \(n) scale \(scale) shift \(shift)")
                }
                var inPlace = x  // y may alias x
                let s2 = inPlace.withUnsafeMutableBufferPointer { p in
                    kernel.expShifted(y: p.baseAddress!, x: p.baseAddress!, shift: shift, n: n)
                }
                if !sameBits(inPlace, expected) || s2.bitPattern != sum.bitPattern {
                    mismatches.append("in place n \(n) scale \(scale) shift \(shift)")
                }
            }
        }
        #expect(mismatches.isEmpty, "\(kernel): \(mismatches.count) cases differ, first \(mismatches.prefix(5))")
    }

    @Test(arguments: DecodeKernel.allCases.filter(\.isAvailable))
    func swigluMatchesTheSwiftArithmetic(kernel: DecodeKernel) {
        var mismatches: [String] = []
        for n in [0, 1, 15, 16, 17, 32, 47, 1536] {
            for scale: Float in [1, 8, 120] {
                let g = inputs(n, seed: UInt64(n + 1000), scale: scale), u = randomArray(n, seed: UInt64(n + 2000))
                var h = [Float](repeating: -1, count: n)
                kernel.swiglu(h: &h, g: g, u: u, n: n)
                if !sameBits(h, referenceSwiglu(g: g, u: u)) { mismatches.append("n \(n) scale \(scale)") }
            }
        }
        #expect(mismatches.isEmpty, "\(kernel): \(mismatches.count) cases differ, first \(mismatches.prefix(5))")
    }
}
