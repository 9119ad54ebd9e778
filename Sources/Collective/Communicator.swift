// The ranks of a data-parallel campaign and what they exchange. Gradients are combined in an order
// Rondo defines, not the MPI library: each rank owns one slice of the gradient vector, receives
// every rank's copy of that slice and adds them in rank order, ((g₀ + g₁) + g₂) + …, then every
// rank gathers the summed slices. A single process reproduces an N-rank sum bit for bit with
// `RankOrderSum.combine` over the N shards' gradients.

import Foundation

/// An error of the collective layer: which operation, on which rank, and what to do.
public struct CollectiveError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What the collectives of one process have moved and how long they took.
public struct CollectiveStatistics: Sendable, Equatable {
    /// Bytes this rank sent.
    public var bytesSent: Int = 0
    /// Seconds spent inside collectives (including waiting for other ranks).
    public var seconds: Double = 0
    public init() {}
}

/// The ranks of one job. Rank 0 writes the campaign directory; every rank calls every collective
/// in the same order.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Every rank's bytes, in rank order.
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
    /// `root`'s bytes, on every rank (the others' `bytes` are ignored).
    func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8]
    /// In place, on every rank: Σ over ranks of `buffer`, added in rank order (`RankOrderSum`).
    func sumInRankOrder(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    func barrier() throws
    /// Ends every rank of the job (a failing rank must not leave the others waiting).
    func abort(code: Int32, message: String) -> Never
    var statistics: CollectiveStatistics { get }
}

/// One process: every collective is the identity.
public final class LocalCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] { bytes }
    public func sumInRankOrder(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
    public func barrier() throws {}
    public func abort(code: Int32, message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(code)
    }
    public var statistics: CollectiveStatistics { CollectiveStatistics() }
}

/// The rule every rank and the single-process emulation share.
public enum RankOrderSum {
    /// The part of a vector of `count` elements that `rank` of `ranks` owns: [r·count/N, (r+1)·count/N).
    public static func slice(rank: Int, ranks: Int, count: Int) -> Range<Int> {
        (rank * count / ranks)..<((rank + 1) * count / ranks)
    }

    /// out[i] = ((s₀[i] + s₁[i]) + s₂[i]) + … — the N-rank sum, computed in one process.
    public static func combine(_ shards: [UnsafeBufferPointer<Float>], into out: UnsafeMutableBufferPointer<Float>) {
        precondition(!shards.isEmpty && shards.allSatisfy { $0.count == out.count }, "shards and output differ in length")
        _ = out.initialize(from: shards[0])
        for s in shards.dropFirst() { add(s, into: out) }
    }

    /// acc[i] += x[i], one rounding per element (the order the MPI path uses on each slice).
    @inline(__always)
    static func add(_ x: UnsafeBufferPointer<Float>, into acc: UnsafeMutableBufferPointer<Float>) {
        guard let a = acc.baseAddress, let b = x.baseAddress else { return }
        for i in 0..<acc.count { a[i] += b[i] }
    }
}

/// The communicator of this process: MPI's world when launched by `mpirun` with an MPI build,
/// otherwise one local rank. A job launched by `mpirun` with a build without MPI is refused.
public func worldCommunicator() throws -> Communicator {
    let env = ProcessInfo.processInfo.environment
    let launched = Int(env["OMPI_COMM_WORLD_SIZE"] ?? env["PMI_SIZE"] ?? env["PMIX_SIZE"] ?? "1") ?? 1
    #if MPI
    if launched > 1 || env["OMPI_COMM_WORLD_SIZE"] != nil { return try MPICommunicator.world() }
    #else
    if launched > 1 {
        throw CollectiveError("launched on \(launched) ranks, but this rondo was built without MPI: build it with `swift build -c release --traits MPI` (needs Debian's openmpi-bin and libopenmpi-dev)")
    }
    #endif
    return LocalCommunicator()
}
