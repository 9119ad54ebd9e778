// The SiLU-gated MLP activation of HF `LlamaMLP`: h = silu(g) ⊙ u, silu(z) = z·σ(z).
// Shapes: gu [N, 2F] holds the fused gate/up projection (gate in columns 0..<F, up in F..<2F);
// h [N, F]. Backward: dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))),  du = dh ⊙ silu(g).

import Foundation

/// h[N, F] = silu(gu[:, :F]) ⊙ gu[:, F:].
public func swigluForward(h: FloatPtr, gu: ConstFloatPtr, rows: Int, hidden f: Int) {
    parallelRows(rows) { range in
        for n in range { swigluRow(h: h + n * f, gu: gu + n * 2 * f, hidden: f, columns: 0..<f) }
    }
}

/// One row's h[c] = silu(g[c]) · u[c] for c in `columns` (g = gu[0..<F], u = gu[F..<2F]): 16 lanes
/// at a time through `exp16`'s arithmetic (Sources/CKernels/exp.c, vectors of the CPU's width), then
/// scalar. With `columns.lowerBound` a multiple of 16, every column gets the same arithmetic as in a
/// whole-row call, so a row computed in column tiles has the same bits.
public func swigluRow(h: FloatPtr, gu: ConstFloatPtr, hidden f: Int, columns: Range<Int>) {
    let c = columns.lowerBound
    DecodeKernel.selected.swiglu(h: h + c, g: gu + c, u: gu + f + c, n: columns.count)
}

/// dgu[N, 2F] = gradients of the gate and up halves given dh[N, F].
public func swigluBackward(dgu: FloatPtr, dh: ConstFloatPtr, gu: ConstFloatPtr, rows: Int, hidden f: Int) {
    parallelRows(rows) { range in
        for n in range {
            let g = gu + n * 2 * f, u = g + f, d = dh + n * f
            let dg = dgu + n * 2 * f, du = dg + f
            var i = 0
            while i + 16 <= f {
                let gv = load16(g + i), dv = load16(d + i)
                let sig = 1 / (1 + exp16(-gv))
                let silu = gv * sig
                store16(dv * silu, du + i)
                store16(dv * load16(u + i) * sig * (1 + gv * (1 - sig)), dg + i)
                i += 16
            }
            while i < f {
                let sig = 1 / (1 + expf(-g[i]))
                du[i] = d[i] * g[i] * sig
                dg[i] = d[i] * u[i] * sig * (1 + g[i] * (1 - sig))
                i += 1
            }
        }
    }
}

/// Plain-loop twin of `swigluForward` (Double).
public func swigluForwardNaive(h: FloatPtr, gu: ConstFloatPtr, rows: Int, hidden f: Int) {
    for n in 0..<rows {
        for i in 0..<f {
            let g = Double(gu[n * 2 * f + i]), u = Double(gu[n * 2 * f + f + i])
            h[n * f + i] = Float(g / (1 + Foundation.exp(-g)) * u)
        }
    }
}

/// Plain-loop twin of `swigluBackward` (Double).
public func swigluBackwardNaive(dgu: FloatPtr, dh: ConstFloatPtr, gu: ConstFloatPtr, rows: Int, hidden f: Int) {
    for n in 0..<rows {
        for i in 0..<f {
            let g = Double(gu[n * 2 * f + i]), u = Double(gu[n * 2 * f + f + i]), d = Double(dh[n * f + i])
            let s = 1 / (1 + Foundation.exp(-g))
            dgu[n * 2 * f + f + i] = Float(d * g * s)
            dgu[n * 2 * f + i] = Float(d * u * s * (1 + g * (1 - s)))
        }
    }
}
