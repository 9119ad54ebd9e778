// The decoder's persistent worker team (LlamaDecode.swift) and the parallel regions it runs.

import Kernels

/// A parallel region of the decoder: plain values, so workers read it without reference counting.
enum DecodeJob {
    case none
    /// y[rows, N] (+)= x[rows, K] · Wᵀ over w's column tiles (`accumulate`: added to y, the residual).
    case linear(y: FloatPtr, x: ConstFloatPtr, w: TiledMatrix, rows: Int, accumulate: Bool)
    case gateUp(layer: Int, rows: Int)
    /// Attention of rows 0..<rows; with `rope`, each (row, kv head) unit first applies RoPE to its
    /// heads and stores its key and value (rows in distinct slots only).
    case attend(layer: Int, rows: Int, rope: Bool)
    case ropeStore(layer: Int, rows: Int)
    /// y = RMSNorm(x) · w for rows 0..<rows.
    case norm(y: FloatPtr, x: FloatPtr, w: ConstFloatPtr, rows: Int)
}

#if canImport(Synchronization) && os(Linux)
import Foundation
import Synchronization

/// Persistent workers for the decoder's parallel regions. A decode step runs eight regions per
/// layer of a few tens of microseconds each. Dispatch's `concurrentPerform` wakes a worker for
/// every region (~35–40 µs measured here) and runs task i on whichever thread comes first. Team
/// workers spin between regions (yielding the CPU; they park after 1 ms without work) and member t
/// always runs task t, which starts with its own range of the region's units (`WorkSplit`).
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

/// The units 0..<count of a parallel region, shared out so that a member slowed down (by another
/// tenant of the machine, a longer attention row) does not keep the others waiting at the region's
/// end. Member t owns the contiguous range a static split gives it and takes its units from the
/// front, in order (its weight tiles stay one memory stream); once its own range is empty it takes
/// units from the back of the other members' ranges. Each range is [front, back) packed in one
/// atomic word on its own cache line. Which member computes a unit never changes the unit's bits.
/// A plain value (no reference count for the members to contend on in their loops); its owner
/// calls `deallocate()`.
struct WorkSplit: @unchecked Sendable {
    let members: Int
    private static let stride = 8  // Ints per range: one 64-byte line each
    private let ranges: UnsafeMutablePointer<Atomic<Int>>

    init(members: Int) {
        self.members = max(1, members)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: self.members * Self.stride * 8, alignment: 64)
        ranges = memory.bindMemory(to: Atomic<Int>.self, capacity: self.members * Self.stride)
        for t in 0..<self.members { (ranges + t * Self.stride).initialize(to: Atomic<Int>(0)) }
    }

    func deallocate() { UnsafeMutableRawPointer(ranges).deallocate() }

    /// Splits units 0..<count for the next region. Call before publishing the region (the team's
    /// epoch bump orders these stores before the members' loads).
    func reset(units count: Int) {
        precondition(count < 1 << 31, "a region of \(count) units")
        for t in 0..<members {
            let range = (count * t / members) << 32 | (count * (t + 1) / members)
            ranges[t * Self.stride].store(range, ordering: .relaxed)
        }
    }

    /// Member t's next unit: the front of its own range, else the back of another's; nil when all
    /// units are taken.
    func next(member t: Int) -> Int? {
        if let u = take(range: t, front: true) { return u }
        for i in 1..<max(members, 1) {
            if let u = take(range: (t + i) % members, front: false) { return u }
        }
        return nil
    }

    private func take(range r: Int, front: Bool) -> Int? {
        let word = ranges + r * Self.stride
        var old = word.pointee.load(ordering: .relaxed)
        while true {
            let f = old >> 32, b = old & 0xFFFF_FFFF
            guard f < b else { return nil }
            let new = front ? (f + 1) << 32 | b : f << 32 | (b - 1)
            let (done, seen) = word.pointee.compareExchange(expected: old, desired: new, ordering: .relaxed)
            if done { return front ? f : b - 1 }
            old = seen
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

/// Without atomics: each member takes the units of its own contiguous range, in order.
struct WorkSplit: @unchecked Sendable {
    let members: Int
    private let fronts: UnsafeMutablePointer<Int>, backs: UnsafeMutablePointer<Int>  // one entry per member
    init(members: Int) {
        self.members = max(1, members)
        fronts = .allocate(capacity: self.members); backs = .allocate(capacity: self.members)
        fronts.initialize(repeating: 0, count: self.members); backs.initialize(repeating: 0, count: self.members)
    }
    func deallocate() { fronts.deallocate(); backs.deallocate() }
    func reset(units count: Int) {
        for t in 0..<members { fronts[t] = count * t / members; backs[t] = count * (t + 1) / members }
    }
    func next(member t: Int) -> Int? {
        guard fronts[t] < backs[t] else { return nil }
        defer { fronts[t] += 1 }
        return fronts[t]
    }
}
#endif
