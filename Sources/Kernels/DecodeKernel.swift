// The decoder's batch-invariant products: Swift face of the CKernels micro-kernels.
//
// y[rows, width] (+)= x[rows, K] · w[K, width], w one transposed weight tile (Model's
// DecodeWeights) stored as contiguous 16-column strips. Every output is one fixed chain of fused
// multiply-adds over k = 0, 1, …, K − 1 from 0 (Sources/CKernels/tile_product.c), so a row's bits
// depend only on its own x row and the tile: not on the other rows of the call, the thread count,
// or the variant below. The attention kernels (Sources/CKernels/attention.c) keep the same rule. The variant
// is chosen once from CPUID; RONDO_KERNEL=portable|avx2|avx512 forces one (tests, debugging).

import CKernels
import Foundation

/// Instruction-set variant of the decode micro-kernels. All variants give the same bits.
public enum DecodeKernel: String, CaseIterable, Sendable {
    /// Plain C with fmaf: the arm64 path, and a slow reference on x86-64.
    case portable
    /// AVX2 + FMA.
    case avx2
    /// AVX-512F.
    case avx512

    /// The environment variable that forces a variant.
    public static let environmentKey = "RONDO_KERNEL"

    /// Whether this variant runs on this CPU.
    public var isAvailable: Bool { ck_variant_available(cVariant) != 0 }

    /// The fastest variant this CPU runs.
    public static var best: DecodeKernel {
        [.avx512, .avx2].first(where: \.isAvailable) ?? .portable
    }

    /// The variant the decoder uses: RONDO_KERNEL's if set (stops with a message if it names no
    /// variant or one this CPU lacks), else `best`.
    public static let selected: DecodeKernel = {
        do {
            return try resolve(ProcessInfo.processInfo.environment[environmentKey])
        } catch {
            fatalError("\(error)")
        }
    }()

    /// The variant `name` (a RONDO_KERNEL value) asks for; nil or empty means `best`.
    public static func resolve(_ name: String?) throws -> DecodeKernel {
        guard let name, !name.isEmpty else { return best }
        guard let v = DecodeKernel(rawValue: name.lowercased()) else {
            throw DecodeKernelError(
                "\(environmentKey)=\(name) names no kernel variant; use one of "
                    + allCases.map(\.rawValue).joined(separator: ", ") + " or unset it")
        }
        guard v.isAvailable else {
            throw DecodeKernelError(
                "\(environmentKey)=\(name): this CPU lacks \(name); available: "
                    + allCases.filter(\.isAvailable).map(\.rawValue).joined(separator: ", "))
        }
        return v
    }

    /// y[r, n] = x[r, ·] · w[·, n] for r < rows, n < width (with `accumulate`, y[r, n] += that
    /// product, one rounded add). `w` is a tile in the strip layout (`DecodeKernel.stripColumns`
    /// columns per contiguous strip, see `stripOffset`). Row strides ldx ≥ k, ldy ≥ width. `next`,
    /// the tile the caller reads after this one, only steers the prefetch (it is never read).
    @inline(__always)
    public func tileProduct(rows: Int, k: Int, width: Int, x: UnsafePointer<Float>, ldx: Int,
                            w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, ldy: Int,
                            accumulate: Bool = false, next: TileHint? = nil) {
        ck_tile_product(cVariant, rows, k, width, x, ldx, w, y, ldy, accumulate ? 1 : 0,
                        next?.w, next?.k ?? 0, next?.width ?? 0)
    }

    /// scores[h · lds + p] = scale · q[h, ·] · key(p, ·) for h < heads, p < len: per score one
    /// fused multiply-add chain over the head dimension, then one rounded multiply. Keys in blocks
    /// of `keyBlock` positions, dimension-major (key(p, e) at (p / 16) · 16 · d + e · 16 + p % 16).
    /// `values`, the values read next, are only prefetched.
    @inline(__always)
    public func attentionScores(heads: Int, d: Int, len: Int, q: UnsafePointer<Float>, keys: UnsafePointer<Float>,
                                scale: Float, scores: UnsafeMutablePointer<Float>, lds: Int,
                                values: UnsafePointer<Float>? = nil) {
        ck_attention_scores(cVariant, heads, d, len, q, keys, scale, scores, lds, values)
    }

    /// out[h, e] = Σ_j p[h · ldp + j] · values[j, e] for h < heads, e < d, j < len: per output one
    /// fused multiply-add chain over j ascending. `then`, the keys read next, are only prefetched.
    @inline(__always)
    public func attentionValues(heads: Int, d: Int, len: Int, p: UnsafePointer<Float>, ldp: Int,
                                values: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                                then: UnsafePointer<Float>? = nil) {
        ck_attention_values(cVariant, heads, d, len, p, ldp, values, out, then)
    }

    /// y[i] = exp(x[i] − shift) for i < n (y may alias x); returns Σ y[i]: `exp16`'s arithmetic on
    /// whole blocks of 16 with a 16-lane sum in lane order, then expf (the bits of any variant).
    @inline(__always)
    public func expShifted(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, shift: Float, n: Int) -> Float {
        ck_exp_shifted(cVariant, y, x, shift, n)
    }

    /// h[i] = g[i] · σ(g[i]) · u[i] for i < n, σ through `exp16` (the bits of any variant).
    @inline(__always)
    public func swiglu(h: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, u: UnsafePointer<Float>, n: Int) {
        ck_swiglu(cVariant, h, g, u, n)
    }

    /// Positions per block of the decoder's key cache.
    public static let keyBlock = Int(CK_KEY_BLOCK)

    /// Columns of one contiguous strip of a tile.
    public static let stripColumns = Int(CK_STRIP)

    /// Where w[kIndex, n] of a tile of `width` columns over k sits in the strip layout: strip
    /// s = n / 16 (ws = min(16, width − 16s) columns) starts at 16·s·k and holds w[kIndex, n] at
    /// kIndex · ws + n − 16s.
    @inline(__always)
    public static func stripOffset(k: Int, width: Int, kIndex: Int, column n: Int) -> Int {
        let s = n / stripColumns, ws = min(stripColumns, width - s * stripColumns)
        return s * stripColumns * k + kIndex * ws + (n - s * stripColumns)
    }

    /// Runs the C peak probe for `iterations` rounds on the calling thread: the FLOPs it did and a
    /// value computed from its results (see MachineRates.fmaPeakGFLOPS).
    func fmaPeakRound(iterations: Int) -> (flops: Double, sink: Float) {
        var flops = 0.0
        let sink = ck_fma_peak(cVariant, iterations, &flops)
        return (flops, sink)
    }

    var cVariant: ck_variant {
        switch self {
        case .portable: CK_PORTABLE
        case .avx2: CK_AVX2
        case .avx512: CK_AVX512
        }
    }
}

/// A tile a product will read after the current one (`tileProduct`'s prefetch hint): its strips,
/// rows (k) and columns.
public struct TileHint {
    public let w: UnsafePointer<Float>, k: Int, width: Int
    @inline(__always) public init(w: UnsafePointer<Float>, k: Int, width: Int) {
        self.w = w; self.k = k; self.width = width
    }
}

/// A RONDO_KERNEL value that names no usable variant.
public struct DecodeKernelError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
