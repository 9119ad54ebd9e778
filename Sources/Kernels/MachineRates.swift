// The machine's limits, measured in the run that uses them: the rate at which it streams a buffer
// from memory, the cores' peak fused multiply-add rate and OpenBLAS's sgemm rate at given shapes.
// `rondo bench sample` compares decoding with the bound they give; `bench train|dpo|ppo` divide
// by the sgemm rate for MFU.

import CBLAS
import CKernels
import Dispatch

/// Measured rates of this machine (best of several passes, after one untimed pass).
public enum MachineRates {
    /// The kernel set OpenBLAS picked for this CPU at load time (e.g. "SkylakeX", "Haswell"; a CPU
    /// its build does not know gets a generic one such as "Prescott", SSE3 only, several times
    /// slower: OPENBLAS_CORETYPE in the environment overrides the choice).
    public static var blasCoreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// GB/s of the fastest read of `buffer` on `threads` threads at once: the best over `passes`
    /// timed passes (after an untimed one) of two ways to split it, `threads` contiguous slices, or
    /// every 1 MB chunk shared out among the threads (as the decoder's workers share every weight
    /// matrix), each thread reading with `kernel`'s vectors and the decode kernels' prefetch (the C
    /// reader is opaque to Swift's optimiser, so the reads are never dropped).
    public static func streamGBps(_ buffer: UnsafeBufferPointer<Float>, threads: Int, passes: Int = 5,
                                  kernel: DecodeKernel = .selected) -> Double {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return .nan }
        let tasks = max(1, threads), n = buffer.count
        var best = Double.infinity
        for pass in 0...max(1, passes) {
            for chunk in [n, 1 << 18] {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let sums = UnsafeMutablePointer<Float>.allocate(capacity: tasks)
                DispatchQueue.concurrentPerform(iterations: tasks) { t in
                    var sum: Float = 0
                    for c0 in stride(from: 0, to: n, by: chunk) {
                        let len = min(chunk, n - c0), lo = c0 + len * t / tasks, hi = c0 + len * (t + 1) / tasks
                        sum += ck_stream_read(kernel.cVariant, base + lo, hi - lo)
                    }
                    sums[t] = sum
                }
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                sums.deallocate()
                if pass > 0 { best = min(best, dt) }
            }
        }
        return Double(n * 4) / best / 1e9
    }

    /// GFLOP/s of `kernel`'s widest fused multiply-adds, twelve independent chains per thread, on
    /// `threads` threads at once (best of `passes` timed passes of about 50 ms): what the cores can
    /// do at most, whatever a library's kernels reach (OpenBLAS falls back to SSE3 kernels on CPUs
    /// its build does not know).
    public static func fmaPeakGFLOPS(kernel: DecodeKernel, threads: Int, passes: Int = 3) -> Double {
        let tasks = max(1, threads), iterations = kernel == .portable ? 1_000_000 : 20_000_000
        var best = 0.0
        for pass in 0...max(1, passes) {
            let flops = UnsafeMutablePointer<Double>.allocate(capacity: tasks)
            let t0 = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: tasks) { t in
                let round = kernel.fmaPeakRound(iterations: iterations)
                flops[t] = round.sink.isNaN ? .nan : round.flops
            }
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            let total = (0..<tasks).reduce(0.0) { $0 + flops[$1] }
            flops.deallocate()
            if pass > 0 { best = max(best, total / dt / 1e9) }
        }
        return best
    }

    /// GFLOP/s of OpenBLAS sgemm, y[m, n] = x[m, k] · W[n, k]ᵀ for each (m, n, k) of `shapes` in
    /// turn, on `threads` threads; the best of `repeats` timed rounds over all shapes. The operands
    /// are allocated once, so the rate is that of the arithmetic with the operands in cache as far
    /// as they fit. OpenBLAS is back at `Threads.count` threads afterwards.
    public static func sgemmGFLOPS(shapes: [(m: Int, n: Int, k: Int)], threads: Int, repeats: Int = 5) -> Double {
        let shapes = shapes.filter { $0.m > 0 && $0.n > 0 && $0.k > 0 }
        guard !shapes.isEmpty else { return .nan }
        setBLASThreads(threads)
        defer { setBLASThreads(Threads.count) }
        let operands = shapes.map { s -> (x: [Float], w: [Float], y: [Float]) in
            ((0..<(s.m * s.k)).map { Float($0 % 7) * 0.01 }, (0..<(s.n * s.k)).map { Float($0 % 5) * 0.01 },
             [Float](repeating: 0, count: s.m * s.n))
        }
        var buffers = operands
        let flops = shapes.reduce(0.0) { $0 + 2 * Double($1.m) * Double($1.n) * Double($1.k) }
        var best = Double.infinity
        for round in 0...max(1, repeats) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for (i, s) in shapes.enumerated() {
                linearForward(y: &buffers[i].y, x: buffers[i].x, w: buffers[i].w, rows: s.m, inDim: s.k, outDim: s.n)
            }
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if round > 0 { best = min(best, dt) }
        }
        return flops / best / 1e9
    }
}
