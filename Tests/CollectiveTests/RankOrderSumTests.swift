import Collective
import Foundation
import TestSupport
import Testing

@Suite struct RankOrderSumTests {
    @Test func slicesCoverTheVectorOnceInOrder() {
        for (ranks, count) in [(1, 7), (2, 7), (3, 10), (4, 3), (8, 1_000_003)] {
            let slices = (0..<ranks).map { RankOrderSum.slice(rank: $0, ranks: ranks, count: count) }
            #expect(slices.first?.lowerBound == 0 && slices.last?.upperBound == count)
            for (a, b) in zip(slices, slices.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
        }
    }

    /// combine is ((s₀ + s₁) + s₂) + … elementwise: a plain loop in the same order gives the same bits,
    /// and a different order (here reversed) gives other bits for these wide-ranging values.
    @Test func combineAddsInRankOrder() {
        let ranks = 4, n = 4096
        let flat = (0..<ranks).flatMap { CollectiveCheck.vector(rank: $0, elements: n, seed: 7) }
        var out = [Float](repeating: .nan, count: n)
        flat.withUnsafeBufferPointer { f in
            let shards = (0..<ranks).map { UnsafeBufferPointer(rebasing: f[($0 * n)..<(($0 + 1) * n)]) }
            out.withUnsafeMutableBufferPointer { RankOrderSum.combine(shards, into: $0) }
        }
        var inOrder = [Float](repeating: 0, count: n), reversed = inOrder
        for i in 0..<n {
            var a = flat[i]
            for r in 1..<ranks { a += flat[r * n + i] }
            inOrder[i] = a
            var b = flat[(ranks - 1) * n + i]
            for r in (0..<(ranks - 1)).reversed() { b += flat[r * n + i] }
            reversed[i] = b
        }
        #expect(out.map(\.bitPattern) == inOrder.map(\.bitPattern))
        #expect(out.map(\.bitPattern) != reversed.map(\.bitPattern))
    }

    @Test func oneLocalRankIsTheIdentity() throws {
        let line = try #require(try CollectiveCheck.run(communicator: LocalCommunicator(), elements: 1000, seed: 3))
        #expect(line == CollectiveCheck.emulate(ranks: 1, elements: 1000, seed: 3))
    }

    #if !MPI
    /// A build without the trait refuses a job that mpirun launched on several ranks, and says how to build one.
    @Test func severalRanksNeedTheTrait() throws {
        let r = try runRondo(["collective-check", "--elements", "10"], environment: ["OMPI_COMM_WORLD_SIZE": "2"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--traits MPI"))
    }
    #endif
}
