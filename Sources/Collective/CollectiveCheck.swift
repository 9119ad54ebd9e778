// `rondo collective-check`: sums seeded per-rank vectors across the ranks of a job (or N emulated
// ranks in one process) and prints the result's SHA-256, so an N-rank sum can be compared with its
// single-process emulation bit for bit.

import Foundation
import Kernels
import RondoSupport

public enum CollectiveCheck {
    /// Rank r's vector: normal draws of Philox(seed, stream r), scaled by powers of two from 2⁻¹⁰ to 2¹⁰
    /// so that float addition order shows in the bits.
    public static func vector(rank: Int, elements: Int, seed: UInt64) -> [Float] {
        let g = Philox(seed: seed, stream: UInt64(rank))
        return (0..<elements).map { i in
            let scale = Float(sign: .plus, exponent: Int(g.uniform(UInt64(2 * i + 1)) * 21) - 10, significand: 1)
            return g.normal(UInt64(2 * i)) * scale
        }
    }

    /// The JSON line: ranks, elements, SHA-256 of the summed vector's bytes, bytes this rank sent.
    static func line(ranks: Int, sum: [Float], bytesSent: Int) -> String {
        let digest = sum.withUnsafeBytes { sha256(bytes: $0) }
        return "{\"ranks\":\(ranks),\"elements\":\(sum.count),\"sha256\":\"\(digest)\",\"bytes_sent\":\(bytesSent)}"
    }

    /// Sums over the ranks of `communicator`; returns the line on rank 0, nil elsewhere.
    public static func run(communicator c: Communicator, elements: Int, seed: UInt64) throws -> String? {
        var v = vector(rank: c.rank, elements: elements, seed: seed)
        try v.withUnsafeMutableBufferPointer { try c.sumInRankOrder($0) }
        // Every rank must hold the same sum: compare digests through the communicator.
        let digests = try c.allGather(Array(v.withUnsafeBytes { sha256(bytes: $0) }.utf8))
        guard Set(digests).count == 1 else { throw CollectiveError("the ranks' sums differ: \(digests.map { String(decoding: $0, as: UTF8.self).prefix(12) })") }
        return c.rank == 0 ? line(ranks: c.size, sum: v, bytesSent: c.statistics.bytesSent) : nil
    }

    /// The same sum, emulating `ranks` ranks in one process.
    public static func emulate(ranks: Int, elements: Int, seed: UInt64) -> String {
        let flat = (0..<ranks).flatMap { vector(rank: $0, elements: elements, seed: seed) }
        var out = [Float](repeating: 0, count: elements)
        flat.withUnsafeBufferPointer { f in
            let shards = (0..<ranks).map { UnsafeBufferPointer(rebasing: f[($0 * elements)..<(($0 + 1) * elements)]) }
            out.withUnsafeMutableBufferPointer { RankOrderSum.combine(shards, into: $0) }
        }
        return line(ranks: ranks, sum: out, bytesSent: 0)
    }
}
