// Every fast kernel against its plain-loop twin, on odd sizes that exercise the SIMD tails,
// and the backward kernels against finite differences of their forwards.

import Foundation
import Kernels
import Testing
import TestSupport

/// Deterministic test data from the counter-based generator.
func randomArray(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    let r = Philox(seed: seed, stream: 99)
    return (0..<n).map { scale * r.normal(UInt64($0)) }
}

func maxRelErr(_ a: [Float], _ b: [Float]) -> Float { relativeError(a, b) }

@Suite struct KernelTests {
    @Test(arguments: [(GEMMTranspose.none, GEMMTranspose.none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)])
    func sgemmMatchesNaive(ta: GEMMTranspose, tb: GEMMTranspose) {
        let m = 17, n = 23, k = 31
        let a = randomArray(m * k, seed: 1), b = randomArray(k * n, seed: 2)
        let lda = ta == .none ? k : m, ldb = tb == .none ? n : k
        var c1 = randomArray(m * n, seed: 3), c2 = c1
        sgemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 1, c: &c1, ldc: n)
        sgemmNaive(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 1, c: &c2, ldc: n)
        #expect(maxRelErr(c1, c2) < 1e-5)
    }

    @Test func rmsnormMatchesNaive() {
        let rows = 37, c = 45
        let x = randomArray(rows * c, seed: 4), w = randomArray(c, seed: 5), dy = randomArray(rows * c, seed: 6)
        var y1 = [Float](repeating: 0, count: rows * c), y2 = y1, r1 = [Float](repeating: 0, count: rows), r2 = r1
        rmsnormForward(y: &y1, rstd: &r1, x: x, w: w, rows: rows, channels: c, eps: 1e-5)
        rmsnormForwardNaive(y: &y2, rstd: &r2, x: x, w: w, rows: rows, channels: c, eps: 1e-5)
        #expect(maxRelErr(y1, y2) < 1e-5)
        var dx1 = y1, dx2 = y1, dw1 = [Float](repeating: 0, count: c), dw2 = dw1
        var scratch = [Float](repeating: 0, count: 8 * c)
        rmsnormBackward(dx: &dx1, dw: &dw1, dy: dy, x: x, w: w, rstd: r1, rows: rows, channels: c,
                        accumulate: false, scratch: &scratch, scratchParts: 8)
        rmsnormBackwardNaive(dx: &dx2, dw: &dw2, dy: dy, x: x, w: w, rstd: r2, rows: rows, channels: c)
        #expect(maxRelErr(dx1, dx2) < 1e-5)
        #expect(maxRelErr(dw1, dw2) < 1e-5)
        // Finite differences of L = Σ dy ⊙ y with respect to x and w (Double forward).
        func loss(_ x: [Float], _ w: [Float]) -> Double {
            var y = [Float](repeating: 0, count: rows * c), r = [Float](repeating: 0, count: rows)
            rmsnormForwardNaive(y: &y, rstd: &r, x: x, w: w, rows: rows, channels: c, eps: 1e-5)
            return zip(y, dy).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let h: Float = 1e-2
        for i in stride(from: 0, to: rows * c, by: 97) {
            var xp = x, xm = x
            xp[i] += h; xm[i] -= h
            let fd = (loss(xp, w) - loss(xm, w)) / Double(2 * h)
            #expect(abs(fd - Double(dx2[i])) < 2e-3 * max(1, abs(fd)), "dx[\(i)] fd \(fd) vs \(dx2[i])")
        }
    }

    @Test func ropeMatchesNaiveAndInverts() {
        let rows = 12, seq = 6, heads = 3, d = 8, stride = heads * d + 5
        let x = randomArray(rows * stride, seed: 7)
        var a = x, b = x
        let table = RoPETable(headDim: d, theta: 10000, maxPositions: 64)
        ropeApply(&a, table: table, rows: rows, seqLen: seq, stride: stride, heads: heads)
        ropeApplyNaive(&b, headDim: d, theta: 10000, rows: rows, seqLen: seq, stride: stride, heads: heads)
        #expect(maxRelErr(a, b) < 1e-5)
        ropeApply(&a, table: table, rows: rows, seqLen: seq, stride: stride, heads: heads, inverse: true)
        #expect(maxRelErr(a, x) < 1e-5)
    }

    @Test func swigluMatchesNaive() {
        let rows = 9, f = 37
        let gu = randomArray(rows * 2 * f, seed: 8, scale: 3), dh = randomArray(rows * f, seed: 9)
        var h1 = [Float](repeating: 0, count: rows * f), h2 = h1
        swigluForward(h: &h1, gu: gu, rows: rows, hidden: f)
        swigluForwardNaive(h: &h2, gu: gu, rows: rows, hidden: f)
        #expect(maxRelErr(h1, h2) < 1e-5)
        var d1 = gu, d2 = gu
        swigluBackward(dgu: &d1, dh: dh, gu: gu, rows: rows, hidden: f)
        swigluBackwardNaive(dgu: &d2, dh: dh, gu: gu, rows: rows, hidden: f)
        #expect(maxRelErr(d1, d2) < 1e-5)
    }

    @Test func attentionMatchesNaive() {
        let s = AttentionShape(batch: 2, seqLen: 2 * causalBlock + 3, heads: 4, kvHeads: 2, headDim: 8)  // 3 causal blocks
        let qkv = randomArray(s.batch * s.seqLen * s.qkvWidth, seed: 10)
        var o1 = [Float](repeating: 0, count: s.batch * s.seqLen * s.outWidth), o2 = o1
        var p1 = [Float](repeating: 0, count: s.probsCount), p2 = p1
        attentionForward(out: &o1, probs: &p1, qkv: qkv, shape: s)
        attentionForwardNaive(out: &o2, probs: &p2, qkv: qkv, shape: s)
        #expect(maxRelErr(o1, o2) < 1e-5)
        #expect(maxRelErr(p1, p2) < 1e-5)
        // Backward against central differences of L = Σ dout ⊙ out (naive forward).
        let dout = randomArray(o1.count, seed: 11)
        var dqkv = [Float](repeating: 0, count: qkv.count)
        var scratch = [Float](repeating: 0, count: s.heads * s.seqLen * s.seqLen)
        attentionBackward(dqkv: &dqkv, dout: dout, probs: p1, qkv: qkv, shape: s, scratch: &scratch)
        func loss(_ q: [Float]) -> Double {
            var o = [Float](repeating: 0, count: o1.count), p = [Float](repeating: 0, count: s.probsCount)
            attentionForwardNaive(out: &o, probs: &p, qkv: q, shape: s)
            return zip(o, dout).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let h: Float = 1e-2
        for i in stride(from: 3, to: qkv.count, by: 397) {
            var a = qkv, b = qkv
            a[i] += h; b[i] -= h
            let fd = (loss(a) - loss(b)) / Double(2 * h)
            #expect(abs(fd - Double(dqkv[i])) < 5e-3 * max(1, abs(fd)), "dqkv[\(i)] fd \(fd) vs \(dqkv[i])")
        }
    }

    @Test func logSoftmaxGatherMatchesNaive() {
        let rows = 7, v = 333
        let logits = randomArray(rows * v, seed: 12, scale: 4)
        let target: [Int32] = [0, 5, 332, 17, 100, 200, 3]
        var lp1 = [Float](repeating: 0, count: rows), lp2 = lp1, l1 = lp1, l2 = lp1
        logSoftmaxGatherForward(logp: &lp1, lse: &l1, logits: logits, target: target, rows: rows, vocab: v)
        logSoftmaxGatherForwardNaive(logp: &lp2, lse: &l2, logits: logits, target: target, rows: rows, vocab: v)
        #expect(maxRelErr(lp1, lp2) < 1e-5)
        let dlogp: [Float] = [1, -0.5, 0, 2, 0.25, -1, 3]
        var g1 = logits, g2 = logits
        logSoftmaxGatherBackward(logits: &g1, lse: l1, dlogp: dlogp, target: target, rows: rows, vocab: v)
        logSoftmaxGatherBackwardNaive(logits: &g2, lse: l2, dlogp: dlogp, target: target, rows: rows, vocab: v)
        #expect(maxRelErr(g1, g2) < 1e-5)
    }

    @Test func softmaxEntropyMatchesNaive() {
        let rows = 5, v = 333
        var logits = randomArray(rows * v, seed: 13, scale: 6)
        for i in 0..<v { logits[4 * v + i] = i == 7 ? 40 : 0 }  // a nearly one-hot row: entropy ≈ 0
        let target = [Int32](repeating: 0, count: rows)
        var lp = [Float](repeating: 0, count: rows), lse = lp, h1 = lp, h2 = lp
        logSoftmaxGatherForward(logp: &lp, lse: &lse, logits: logits, target: target, rows: rows, vocab: v)
        softmaxEntropyForward(entropy: &h1, logits: logits, lse: lse, rows: rows, vocab: v)
        softmaxEntropyForwardNaive(entropy: &h2, logits: logits, rows: rows, vocab: v)
        for r in 0..<rows { #expect(abs(h1[r] - h2[r]) <= 2e-6 * max(1, h2[r]), "row \(r): \(h1[r]) vs \(h2[r])") }
        #expect(h1[4] >= 0 && h1[4] < 1e-6, "one-hot row entropy \(h1[4])")
        let uniform = [Float](repeating: 0.5, count: v)
        var hu: Float = 0, lu: Float = 0, pu: Float = 0
        logSoftmaxGatherForward(logp: &pu, lse: &lu, logits: uniform, target: target, rows: 1, vocab: v)
        softmaxEntropyForward(entropy: &hu, logits: uniform, lse: &lu, rows: 1, vocab: v)
        #expect(abs(hu - logf(Float(v))) < 1e-5, "uniform entropy \(hu) vs log V")
    }

    @Test func vectorHelpersMatchScalarLoops() {
        for n in [1, 15, 16, 17, 33, 100] {
            let a = randomArray(n, seed: UInt64(n), scale: 5), b = randomArray(n, seed: UInt64(n + 1000))
            let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            #expect(abs(Double(vdot(a, b, n)) - dot) < 1e-4 * max(1, abs(dot)))
            #expect(vmax(a, n) == a.max()!)
            var e = [Float](repeating: 0, count: n)
            let m = a.max()!
            let z = vexpShifted(&e, a, m, n)
            for i in 0..<n { #expect(abs(e[i] - expf(a[i] - m)) <= 4e-7 * max(1, expf(a[i] - m))) }
            #expect(abs(z - e.reduce(0, +)) < 1e-5 * z)
        }
    }

    @Test func philoxIsCounterBased() {
        let r = Philox(seed: 42, stream: 3)
        #expect(r.block(7) == Philox(seed: 42, stream: 3).block(7))
        #expect(r.block(7) != r.block(8))
        #expect(r.block(7) != Philox(seed: 43, stream: 3).block(7))
        #expect(r.block(7) != Philox(seed: 42, stream: 4).block(7))
        // Normal draws: mean ≈ 0, variance ≈ 1 over 20k samples.
        let xs = (0..<20_000).map { Double(r.normal(UInt64($0))) }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count)
        #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
    }
}
