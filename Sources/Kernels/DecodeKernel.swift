// The decoder's batch-invariant products: Swift face of the CKernels micro-kernels.
//
// y[rows, width] (+)= x[rows, K] · w[K, width], w one transposed weight tile (Model's
// DecodeWeights). Every output is one fixed chain of fused multiply-adds over k = 0, 1, …, K − 1
// from 0 (Sources/CKernels/tile_product.c), so a row's bits depend only on its own x row and the
// tile: not on the other rows of the call, the thread count, or the variant below. The variant
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
    /// product, one rounded add). Row strides ldx ≥ k, ldw ≥ width, ldy ≥ width. `next` names the
    /// floats the caller reads next (its next weight tile): the SIMD variants request them into L2
    /// while they compute, so memory and arithmetic overlap; it changes no value.
    @inline(__always)
    public func tileProduct(rows: Int, k: Int, width: Int, x: UnsafePointer<Float>, ldx: Int,
                            w: UnsafePointer<Float>, ldw: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                            accumulate: Bool = false, next: UnsafeBufferPointer<Float>? = nil) {
        ck_tile_product(cVariant, rows, k, width, x, ldx, w, ldw, y, ldy, accumulate ? 1 : 0,
                        next?.baseAddress, (next?.count ?? 0) * 4)
    }

    private var cVariant: ck_variant {
        switch self {
        case .portable: CK_PORTABLE
        case .avx2: CK_AVX2
        case .avx512: CK_AVX512
        }
    }
}

/// A RONDO_KERNEL value that names no usable variant.
public struct DecodeKernelError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
