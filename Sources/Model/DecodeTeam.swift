// The decoder's persistent worker team (LlamaDecode.swift) and the parallel regions it runs.

import Kernels

/// A parallel region of the decoder: plain values, so workers read it without reference counting.
enum DecodeJob {
    case none
    /// y[rows, N] (+)= x[rows, K] · Wᵀ over w's column tiles (`accumulate`: added to y, the residual).
    case linear(y: FloatPtr, x: ConstFloatPtr, w: TiledMatrix, rows: Int, accumulate: Bool)
    case gateUp(layer: Int, rows: Int)
    case attend(layer: Int, rows: Int)
    case ropeStore(layer: Int, rows: Int)
    /// y = RMSNorm(x) · w for rows 0..<rows.
    case norm(y: FloatPtr, x: FloatPtr, w: ConstFloatPtr, rows: Int)
}

#if canImport(Synchronization) && os(Linux)
import Foundation
import Synchronization

/// Persistent workers for the decoder's parallel regions. A decode step runs about five regions
/// per layer of a few tens of microseconds each. Dispatch's `concurrentPerform` wakes a worker for
/// every region (~35–40 µs measured here) and runs task i on whichever thread comes first, so a
/// core does not keep the same weight tiles in cache from step to step. Team workers spin between
/// regions (yielding the CPU; they park after 1 ms without work) and member t always runs task t.
/// How the work is split never changes a row's bits (see the file header).
final class DecodeTeam: @unchecked Sendable {
    /// Members, the calling thread included.
    let size: Int
    private let core: TeamCore

    /// Starts `size − 1` workers; `perform(t)` is member t's part of the current region.
    init(size: Int, perform: @escaping (Int) -> Void) {
        self.size = max(1, size)
        core = TeamCore(perform: perform)
        for t in 1..<self.size {
            let core = core
            let thread = Thread { core.work(t) }
            thread.name = "rondo-decode-\(t)"
            thread.start()
        }
    }

    deinit { core.stop(workers: size - 1) }

    /// Runs perform(t) for every member t (0 on the caller); returns when all are done.
    func run() {
        guard size > 1 else { return core.perform(0) }
        core.run(workers: size - 1)
    }
}

/// What the workers share with the caller (apart from the team, so workers do not retain it).
private final class TeamCore: @unchecked Sendable {
    let perform: (Int) -> Void
    private let epoch = Atomic<Int>(0)     // bumped once per region, and on stop
    private let finished = Atomic<Int>(0)  // workers done with the current region
    private let parked = Atomic<Int>(0)    // workers blocked on `wake`
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)

    init(perform: @escaping (Int) -> Void) { self.perform = perform }

    func run(workers: Int) {
        finished.store(0, ordering: .relaxed)
        epoch.wrappingAdd(1, ordering: .sequentiallyConsistent)  // publishes the caller's job
        let sleeping = parked.load(ordering: .sequentiallyConsistent)
        for _ in 0..<sleeping { wake.signal() }
        perform(0)
        var spins = 0
        while finished.load(ordering: .acquiring) < workers {
            spins += 1
            if spins > 64 { sched_yield() }
        }
    }

    func stop(workers: Int) {
        stopping.store(true, ordering: .sequentiallyConsistent)
        epoch.wrappingAdd(1, ordering: .sequentiallyConsistent)
        for _ in 0..<workers { wake.signal() }
    }

    /// Member t's loop. It starts from epoch 0, the value before any region: a worker that starts
    /// late must still take part in the regions already published.
    func work(_ t: Int) {
        var seen = 0
        while true {
            var spins = 0
            var idleSince = DispatchTime.now().uptimeNanoseconds
            while epoch.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < 256 { continue }
                sched_yield()
                if spins & 255 == 0, DispatchTime.now().uptimeNanoseconds - idleSince > 1_000_000 {
                    // Park until the next region; the caller signals once per parked worker (a stale
                    // signal only makes a later wait return early, and the loop re-checks).
                    parked.wrappingAdd(1, ordering: .sequentiallyConsistent)
                    if epoch.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                    parked.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                    idleSince = DispatchTime.now().uptimeNanoseconds
                }
            }
            seen += 1  // regions run one at a time: the caller waits for every worker before the next
            if stopping.load(ordering: .acquiring) { return }
            perform(t)
            finished.wrappingAdd(1, ordering: .releasing)
        }
    }
}
#else
/// Where the Synchronization module is unavailable: one Dispatch region per call.
final class DecodeTeam: @unchecked Sendable {
    let size: Int
    private let perform: (Int) -> Void
    init(size: Int, perform: @escaping (Int) -> Void) { self.size = max(1, size); self.perform = perform }
    func run() { parallelFor(size, perform) }
}
#endif
