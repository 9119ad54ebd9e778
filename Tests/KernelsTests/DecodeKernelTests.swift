// The decode micro-kernels bit for bit: each variant this CPU runs against a plain loop with the
// same reduction order (acc = fma(x, w, acc) over k from 0), on odd shapes that exercise every
// register-block and column tail, and the variants against each other.

import Foundation
import Kernels
import Testing

/// y[r, n] (+)= Σ_k x[r, k] w[k, n] as one fused multiply-add chain per output, k ascending.
private func referenceTileProduct(rows: Int, k: Int, width: Int, x: [Float], ldx: Int, w: [Float], ldw: Int,
                                  y: inout [Float], ldy: Int, accumulate: Bool) {
    for r in 0..<rows {
        for n in 0..<width {
            var acc: Float = 0
            for i in 0..<k { acc = acc.addingProduct(x[r * ldx + i], w[i * ldw + n]) }
            y[r * ldy + n] = accumulate ? y[r * ldy + n] + acc : acc
        }
    }
}

/// w[K, width] (row stride ldw) in the kernels' strip layout (`DecodeKernel.stripOffset`).
private func stripLayout(_ w: [Float], k: Int, width: Int, ldw: Int) -> [Float] {
    var out = [Float](repeating: .nan, count: k * width)
    for i in 0..<k {
        for n in 0..<width { out[DecodeKernel.stripOffset(k: k, width: width, kIndex: i, column: n)] = w[i * ldw + n] }
    }
    return out
}

/// The bits of `a` and `b` are identical (NaNs included: a NaN only equals the same NaN pattern).
private func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

private let availableKernels = DecodeKernel.allCases.filter(\.isAvailable)

@Suite struct DecodeKernelTests {
    @Test(arguments: availableKernels)
    func matchesReferenceOnOddShapes(kernel: DecodeKernel) {
        var mismatches: [String] = []
        for k in [1, 3, 17, 67] {
            for width in Array(1...64) + [65, 100, 130] {
                for rows in Array(1...14) + [25, 37, 61] {
                    let ldx = k + 3, ldw = width + 1, ldy = width + 5
                    let seed = UInt64(k * 100_000 + width * 100 + rows)
                    let x = randomArray(rows * ldx, seed: seed), w = randomArray(k * ldw, seed: seed + 1)
                    let tile = stripLayout(w, k: k, width: width, ldw: ldw)
                    let y0 = randomArray(rows * ldy, seed: seed + 2)
                    for accumulate in [false, true] {
                        var expected = y0, got = y0
                        referenceTileProduct(rows: rows, k: k, width: width, x: x, ldx: ldx, w: w, ldw: ldw,
                                             y: &expected, ldy: ldy, accumulate: accumulate)
                        kernel.tileProduct(rows: rows, k: k, width: width, x: x, ldx: ldx, w: tile, y: &got, ldy: ldy,
                                           accumulate: accumulate)
                        if !sameBits(got, expected) {
                            mismatches.append("K \(k) width \(width) rows \(rows) accumulate \(accumulate)")
                        }
                    }
                }
            }
        }
        #expect(mismatches.isEmpty, "\(kernel): \(mismatches.count) shapes differ, first \(mismatches.prefix(5))")
    }

    /// The prefetch hint (the tile read next) changes no bits, whatever its shape.
    @Test(arguments: availableKernels)
    func nextTileHintChangesNoBits(kernel: DecodeKernel) {
        let other = randomArray(1536 * 32, seed: 7)
        for (k, width, rows) in [(67, 32, 16), (576, 32, 16), (576, 32, 1), (40, 65, 13), (576, 9, 3)] {
            let seed = UInt64(k * 1000 + width * 10 + rows)
            let x = randomArray(rows * k, seed: seed)
            let tile = stripLayout(randomArray(k * width, seed: seed + 1), k: k, width: width, ldw: width)
            var plain = [Float](repeating: 0, count: rows * width)
            kernel.tileProduct(rows: rows, k: k, width: width, x: x, ldx: k, w: tile, y: &plain, ldy: width)
            other.withUnsafeBufferPointer { o in
                for (nk, nw) in [(1536, 32), (576, 16), (3, 7)] {
                    var hinted = [Float](repeating: 0, count: rows * width)
                    kernel.tileProduct(rows: rows, k: k, width: width, x: x, ldx: k, w: tile, y: &hinted, ldy: width,
                                       next: TileHint(w: o.baseAddress!, k: nk, width: nw))
                    #expect(sameBits(hinted, plain), "\(kernel) K \(k) width \(width) rows \(rows) next \(nk)×\(nw)")
                }
            }
        }
    }

    /// Every slot of the strip layout holds one element of w, each exactly once.
    @Test func stripLayoutIsAPermutation() {
        for (k, width) in [(1, 1), (3, 16), (5, 17), (7, 32), (4, 33), (2, 64), (3, 100)] {
            let offsets = (0..<k).flatMap { i in
                (0..<width).map { DecodeKernel.stripOffset(k: k, width: width, kIndex: i, column: $0) }
            }
            #expect(offsets.sorted() == Array(0..<(k * width)), "K \(k) width \(width)")
        }
    }

    /// Decoder shapes (K = 576 and 1536, full 32-column tiles, 37 rows): every available variant
    /// gives the bits of the portable one, and a row's bits do not depend on the rows around it.
    @Test func variantsAgreeAtDecoderShapes() {
        for k in [576, 1536] {
            let rows = 37, width = 32
            let x = randomArray(rows * k, seed: 7)
            let w = stripLayout(randomArray(k * width, seed: 8, scale: 0.05), k: k, width: width, ldw: width)
            var portable = [Float](repeating: 0, count: rows * width)
            DecodeKernel.portable.tileProduct(rows: rows, k: k, width: width, x: x, ldx: k, w: w, y: &portable,
                                              ldy: width)
            for kernel in availableKernels {
                var all = [Float](repeating: 0, count: rows * width), single = all
                kernel.tileProduct(rows: rows, k: k, width: width, x: x, ldx: k, w: w, y: &all, ldy: width)
                for r in 0..<rows {  // each row alone, as a batch-1 decode step would compute it
                    x.withUnsafeBufferPointer { xb in
                        single.withUnsafeMutableBufferPointer { yb in
                            kernel.tileProduct(rows: 1, k: k, width: width, x: xb.baseAddress! + r * k, ldx: k, w: w,
                                               y: yb.baseAddress! + r * width, ldy: width)
                        }
                    }
                }
                #expect(sameBits(all, portable), "\(kernel) vs portable at K \(k)")
                #expect(sameBits(single, all), "\(kernel): rows alone vs 37 together at K \(k)")
            }
        }
    }

    #if arch(x86_64) && os(Linux)
    /// The vector variants are not silently replaced by the portable one on a CPU that has them.
    @Test func availabilityFollowsCPUFlags() throws {
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?
            .split(separator: " ").map(String.init) ?? [])
        #expect(DecodeKernel.avx2.isAvailable == (flags.contains("avx2") && flags.contains("fma")))
        #expect(DecodeKernel.avx512.isAvailable == flags.contains("avx512f"))
        #expect(DecodeKernel.best == (flags.contains("avx512f") ? .avx512 : flags.contains("avx2") ? .avx2 : .portable))
    }
    #endif

    @Test func environmentOverrideResolves() throws {
        #expect(try DecodeKernel.resolve(nil) == DecodeKernel.best)
        #expect(try DecodeKernel.resolve("") == DecodeKernel.best)
        #expect(try DecodeKernel.resolve("portable") == .portable)
        for kernel in availableKernels { #expect(try DecodeKernel.resolve(kernel.rawValue.uppercased()) == kernel) }
        #expect(throws: DecodeKernelError.self) { try DecodeKernel.resolve("sse9") }
        do {
            _ = try DecodeKernel.resolve("sse9")
        } catch {
            #expect("\(error)".contains("RONDO_KERNEL=sse9"))
            #expect("\(error)".contains("portable"))
        }
    }

    /// The measured rates the benches divide by are finite and positive.
    @Test func machineRatesAreMeasured() {
        let buffer = [Float](repeating: 1, count: 1 << 21)
        let stream = buffer.withUnsafeBufferPointer { MachineRates.streamGBps($0, threads: 2, passes: 2) }
        #expect(stream.isFinite && stream > 0.1, "stream \(stream) GB/s")
        let sgemm = MachineRates.sgemmGFLOPS(shapes: [(m: 32, n: 64, k: 96), (m: 32, n: 96, k: 64)], threads: 1, repeats: 2)
        #expect(sgemm.isFinite && sgemm > 0.1, "sgemm \(sgemm) GFLOP/s")
        #expect(MachineRates.sgemmGFLOPS(shapes: [(m: 0, n: 4, k: 4)], threads: 1).isNaN)
        for kernel in availableKernels {
            let peak = MachineRates.fmaPeakGFLOPS(kernel: kernel, threads: 1, passes: 1)
            #expect(peak.isFinite && peak > 0.01, "\(kernel) FMA peak \(peak) GFLOP/s")
        }
    }
}
