// The decoder's dynamic split of a region's units (DecodeTeam.swift): every unit is handed out
// exactly once, each member's own range in order first, whatever the members' speeds.

import Foundation
@testable import Model
import Testing

@Suite struct WorkSplitTests {
    /// One member alone takes 0..<count in order, then nothing.
    @Test func singleMemberTakesAllInOrder() {
        let split = WorkSplit(members: 1)
        defer { split.deallocate() }
        for count in [0, 1, 7, 300] {
            split.reset(units: count)
            var got: [Int] = []
            while let u = split.next(member: 0) { got.append(u) }
            #expect(got == Array(0..<count), "count \(count)")
        }
    }

    /// A member that runs alone after the region starts takes its own range in order, then the
    /// others' from their backs: all units once.
    @Test func idleMembersRangesAreTakenFromTheBack() {
        let split = WorkSplit(members: 3)
        defer { split.deallocate() }
        split.reset(units: 10)  // ranges [0, 3), [3, 6), [6, 10)
        var got: [Int] = []
        while let u = split.next(member: 1) { got.append(u) }
        #expect(got == [3, 4, 5, 9, 8, 7, 6, 2, 1, 0])
    }

    /// Members racing on real threads, one of them slowed: every unit exactly once, reusable
    /// across regions.
    @Test func concurrentMembersTakeEveryUnitOnce() {
        let members = 4, count = 2_000
        let split = WorkSplit(members: members)
        defer { split.deallocate() }
        for region in 0..<20 {
            split.reset(units: count)
            let taken = UnsafeMutablePointer<Int>.allocate(capacity: count)
            taken.initialize(repeating: 0, count: count)
            defer { taken.deallocate() }
            DispatchQueue.concurrentPerform(iterations: members) { t in
                while let u = split.next(member: t) {
                    taken[u] += 1  // each index is written by the one member that took it
                    if t == region % members { usleep(1) }
                }
            }
            let counts = Array(UnsafeBufferPointer(start: taken, count: count))
            #expect(counts.allSatisfy { $0 == 1 }, "region \(region): \(counts.filter { $0 != 1 }.count) units not taken once")
        }
    }
}
