// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011). A draw is a pure function of (key, counter), so any stream can be
// addressed directly — no state is shared between rows, batches or threads.

import Foundation

/// A Philox4x32-10 stream: `key` picks the stream (seed and purpose), the counter indexes draws.
public struct Philox: Sendable, Hashable, Codable {
    public var key: (UInt32, UInt32) { (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)) }
    /// The 64-bit key (seed of the stream).
    public let seed: UInt64
    /// The 64-bit stream id, placed in the high counter words.
    public let stream: UInt64

    public init(seed: UInt64, stream: UInt64 = 0) {
        self.seed = seed
        self.stream = stream
    }

    /// Four 32-bit random words for block `index` of this stream.
    @inline(__always)
    public func block(_ index: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        var c0 = UInt32(truncatingIfNeeded: index), c1 = UInt32(truncatingIfNeeded: index >> 32)
        var c2 = UInt32(truncatingIfNeeded: stream), c3 = UInt32(truncatingIfNeeded: stream >> 32)
        var (k0, k1) = key
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let n0 = UInt32(truncatingIfNeeded: p1 >> 32) ^ c1 ^ k0
            let n2 = UInt32(truncatingIfNeeded: p0 >> 32) ^ c3 ^ k1
            c0 = n0; c1 = UInt32(truncatingIfNeeded: p1)
            c2 = n2; c3 = UInt32(truncatingIfNeeded: p0)
            k0 &+= 0x9E37_79B9; k1 &+= 0xBB67_AE85
        }
        return (c0, c1, c2, c3)
    }

    /// A uniform float in [0, 1) (24 random bits) for draw `index`.
    @inline(__always)
    public func uniform(_ index: UInt64) -> Float {
        let (r, _, _, _) = block(index)
        return Float(r >> 8) * (1.0 / 16_777_216.0)
    }

    /// A standard normal draw for `index` (Box–Muller on two 32-bit words, computed in Double).
    @inline(__always)
    public func normal(_ index: UInt64) -> Float {
        let (r0, r1, _, _) = block(index)
        let u1 = (Double(r0) + 1) / 4_294_967_297.0  // (0, 1]: log is finite
        let u2 = Double(r1) / 4_294_967_296.0
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    public static func == (a: Philox, b: Philox) -> Bool { a.seed == b.seed && a.stream == b.stream }
    public func hash(into h: inout Hasher) { h.combine(seed); h.combine(stream) }
}

