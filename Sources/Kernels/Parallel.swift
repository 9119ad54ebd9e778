// Row-parallel loops on Dispatch for elementwise kernels.
//
// Work is split into contiguous row ranges; every row is computed by exactly one thread with
// the same arithmetic whatever the split, so results are bit-identical for any thread count.

import Dispatch

/// Process-wide thread settings for Rondo's kernels.
public enum Threads {
    /// Threads used by Dispatch loops (and, via `configure`, by OpenBLAS).
    nonisolated(unsafe) public private(set) static var count: Int = 1

    /// Sets the thread count for both Dispatch kernels and OpenBLAS.
    public static func configure(_ n: Int) {
        count = max(1, n)
        setBLASThreads(count)
    }

    /// Runs `body` with OpenBLAS single-threaded, so that Dispatch workers can each run their own
    /// small products concurrently (OpenBLAS runs a one-thread call on the calling thread).
    /// OpenBLAS gives the same bits for a product whatever its thread count.
    public static func withSingleThreadedBLAS(_ body: () -> Void) {
        if count == 1 { return body() }
        setBLASThreads(1)
        body()
        setBLASThreads(count)
    }
}

/// Runs `body(range)` over `0..<rows` split into at most `Threads.count` contiguous chunks.
/// Small problems (below `minRowsPerTask` rows per task) run inline on the caller.
@inline(__always)
public func parallelRows(_ rows: Int, minRowsPerTask: Int = 16, _ body: (Range<Int>) -> Void) {
    let tasks = min(Threads.count, max(1, rows / max(1, minRowsPerTask)))
    if tasks <= 1 {
        body(0..<rows)
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: tasks) { t in
            let lo = rows * t / tasks, hi = rows * (t + 1) / tasks
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// Runs `body(i)` for i in 0..<n on Dispatch (inline when n ≤ 1).
@inline(__always)
public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    if n <= 1 {
        if n == 1 { body(0) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: n) { body($0) }
    }
}
