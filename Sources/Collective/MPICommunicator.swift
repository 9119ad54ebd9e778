// The MPI transport (the `MPI` package trait): Open MPI through Rondo's C shim.

#if MPI
import CMPIShim
import Foundation

/// MPI_COMM_WORLD. Only the thread that created it calls it (MPI_THREAD_FUNNELED).
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public private(set) var statistics = CollectiveStatistics()
    private var scratch: [Float] = []
    nonisolated(unsafe) private static var shared: MPICommunicator?

    /// The world communicator; initialises MPI on first use.
    public static func world() throws -> MPICommunicator {
        if let s = shared { return s }
        if rondo_mpi_is_initialized() == 0 {
            let rc = rondo_mpi_init()
            guard rc == 0 else { throw CollectiveError("MPI_Init_thread failed: \(errorText(rc))") }
        }
        let s = MPICommunicator(rank: Int(rondo_mpi_rank()), size: Int(rondo_mpi_size()))
        shared = s
        atexit { if rondo_mpi_is_initialized() != 0 { _ = rondo_mpi_finalize() } }
        return s
    }

    private init(rank: Int, size: Int) { self.rank = rank; self.size = size }

    static func errorText(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: 512)
        rondo_mpi_error_string(code, &text, Int32(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func check(_ rc: Int32, _ what: String) throws {
        guard rc == 0 else { throw CollectiveError("rank \(rank) of \(size): \(what) failed: \(Self.errorText(rc))") }
    }

    private func timed<T>(bytes: Int, _ body: () throws -> T) rethrows -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer {
            statistics.seconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            statistics.bytesSent += bytes
        }
        return try body()
    }

    private func int32(_ n: Int, _ what: String) throws -> Int32 {
        guard let v = Int32(exactly: n) else {
            throw CollectiveError("rank \(rank): \(what) of \(n) elements exceeds MPI's 32-bit counts; use more ranks")
        }
        return v
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        try timed(bytes: bytes.count * size) {
            var sizes = [Int64](repeating: 0, count: size)
            try check(rondo_mpi_allgather_int64(Int64(bytes.count), &sizes), "MPI_Allgather of sizes")
            let counts = try sizes.map { try int32(Int($0), "a gathered message") }
            var offsets = [Int32](repeating: 0, count: size)
            for r in 1..<max(1, size) { offsets[r] = offsets[r - 1] + counts[r - 1] }
            var all = [UInt8](repeating: 0, count: Int(sizes.reduce(0, +)))
            try check(rondo_mpi_allgatherv_bytes(bytes, try int32(bytes.count, "a gathered message"), &all, counts, offsets),
                      "MPI_Allgatherv")
            return (0..<size).map { Array(all[Int(offsets[$0])..<Int(offsets[$0] + counts[$0])]) }
        }
    }

    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        try timed(bytes: rank == root ? bytes.count * (size - 1) : 0) {
            var n = [Int64](repeating: 0, count: size)
            try check(rondo_mpi_allgather_int64(Int64(bytes.count), &n), "MPI_Allgather of sizes")
            var buffer = rank == root ? bytes : [UInt8](repeating: 0, count: Int(n[root]))
            try check(rondo_mpi_bcast_bytes(&buffer, try int32(buffer.count, "a broadcast"), Int32(root)), "MPI_Bcast")
            return buffer
        }
    }

    public func sumInRankOrder(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        let n = buffer.count, N = size
        let slices = (0..<N).map { RankOrderSum.slice(rank: $0, ranks: N, count: n) }
        let mine = slices[rank]
        try timed(bytes: (n - mine.count) * 4 * 2) {
            let sendCounts = try slices.map { try int32($0.count, "a gradient slice") }
            let sendOffsets = try slices.map { try int32($0.lowerBound, "a gradient offset") }
            let recvCounts = [Int32](repeating: try int32(mine.count, "a gradient slice"), count: N)
            let recvOffsets = try (0..<N).map { try int32($0 * mine.count, "a gradient offset") }
            if scratch.count < N * mine.count { scratch = [Float](repeating: 0, count: N * mine.count) }
            try scratch.withUnsafeMutableBufferPointer { s in
                try check(rondo_mpi_alltoallv_float(buffer.baseAddress, sendCounts, sendOffsets, s.baseAddress,
                                                    recvCounts, recvOffsets), "MPI_Alltoallv of gradients")
                // Shard r of my slice sits at r·|slice|: add them in rank order into shard 0.
                let acc = UnsafeMutableBufferPointer(rebasing: s[0..<mine.count])
                for r in 1..<N {
                    RankOrderSum.add(UnsafeBufferPointer(rebasing: s[(r * mine.count)..<((r + 1) * mine.count)]), into: acc)
                }
                try check(rondo_mpi_allgatherv_float(acc.baseAddress, recvCounts[0], buffer.baseAddress, sendCounts, sendOffsets),
                          "MPI_Allgatherv of summed gradients")
            }
        }
    }

    public func barrier() throws { try check(rondo_mpi_barrier(), "MPI_Barrier") }

    public func abort(code: Int32, message: String) -> Never {
        FileHandle.standardError.write(Data(("rank \(rank) of \(size): \(message)\n").utf8))
        rondo_mpi_abort(code)
        exit(code)
    }
}
#endif
