// ggml tensor types and their decoding to float32, ported from ggml's `dequantize_row_*`
// (ggml/src/ggml-quants.c) and checked bit for bit against gguf-py's `gguf.quants.dequantize`.
//
// Every formula has at most one float32 rounding: the scale × quant products are exact (a half
// has an 11-bit significand and the quants and sub-scales are small integers), and only the final
// `+ m` / `− dmin·m` rounds. So the results are the same bits in any evaluation order.

import Foundation

/// The ggml tensor types Rondo reads (and the ids of those it does not).
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30

    /// ggml's name, e.g. `Q4_K`.
    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        default: return "\(self)".uppercased()
        }
    }

    /// Values per block (1 for the plain float types).
    public var blockValues: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: return 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18
        case .q4_1: return 20
        case .q5_0: return 22
        case .q5_1: return 24
        case .q8_0: return 34
        case .q2_K: return 84
        case .q3_K: return 110
        case .q4_K: return 144
        case .q5_K: return 176
        case .q6_K: return 210
        }
    }

    /// Names of ggml type ids that exist but Rondo does not decode.
    static let unsupported: [UInt32: String] = [
        9: "Q8_1", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL",
        21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
        29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
    ]

    /// The type with id `id`, or an error naming the tensor.
    static func resolve(_ id: UInt32, tensor: String, path: String) throws -> GGMLType {
        if let t = GGMLType(rawValue: id) { return t }
        let supported = GGMLType.allCases.map(\.name).joined(separator: ", ")
        if let known = unsupported[id] {
            throw ModelError("\(path): tensor '\(tensor)': ggml type \(known) (id \(id)) is not supported (Rondo reads \(supported)); re-quantise the model to one of these")
        }
        throw ModelError("\(path): tensor '\(tensor)': unknown ggml type id \(id); the file is corrupt or from a newer llama.cpp")
    }

    /// Decodes `count` values (a multiple of `blockValues`) from `src` into `dst`.
    public func dequantize(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        let blocks = count / blockValues
        for b in 0..<blocks {
            let x = src + b * blockBytes
            let y = dst + b * blockValues
            switch self {
            case .f32: y.pointee = Float(bitPattern: u32(x, 0))
            case .f16: y.pointee = HalfFloat.toFloat(u16(x, 0))
            case .bf16: y.pointee = Float(bitPattern: UInt32(u16(x, 0)) << 16)
            case .q8_0: Dequantize.q8_0(x, y)
            case .q4_0: Dequantize.q4(x, y, hasMin: false)
            case .q4_1: Dequantize.q4(x, y, hasMin: true)
            case .q5_0: Dequantize.q5(x, y, hasMin: false)
            case .q5_1: Dequantize.q5(x, y, hasMin: true)
            case .q2_K: Dequantize.q2_K(x, y)
            case .q3_K: Dequantize.q3_K(x, y)
            case .q4_K: Dequantize.q45_K(x, y, fiveBit: false)
            case .q5_K: Dequantize.q45_K(x, y, fiveBit: true)
            case .q6_K: Dequantize.q6_K(x, y)
            }
        }
    }
}

@inline(__always) func u16(_ p: UnsafeRawPointer, _ at: Int) -> UInt16 {
    UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt16.self))
}
@inline(__always) func u32(_ p: UnsafeRawPointer, _ at: Int) -> UInt32 {
    UInt32(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt32.self))
}
@inline(__always) private func byte(_ p: UnsafeRawPointer, _ at: Int) -> UInt8 { p.load(fromByteOffset: at, as: UInt8.self) }
@inline(__always) private func half(_ p: UnsafeRawPointer, _ at: Int) -> Float { HalfFloat.toFloat(u16(p, at)) }

/// One block of each quantised type: `x` the block's bytes, `y` its values.
enum Dequantize {
    /// `d` f16, `qs` int8[32]: d·qs[k].
    static func q8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        for k in 0..<32 { y[k] = d * Float(Int8(bitPattern: byte(x, 2 + k))) }
    }

    /// Q4_0: `d`, `qs` u8[16]: d·(nib − 8). Q4_1: `d`, `m`, `qs`: d·nib + m.
    static func q4(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, hasMin: Bool) {
        let d = half(x, 0)
        let m: Float = hasMin ? half(x, 2) : 0
        let qs = hasMin ? 4 : 2
        for j in 0..<16 {
            let q = byte(x, qs + j)
            if hasMin {
                y[j] = d * Float(q & 15) + m
                y[j + 16] = d * Float(q >> 4) + m
            } else {
                y[j] = d * Float(Int(q & 15) - 8)
                y[j + 16] = d * Float(Int(q >> 4) - 8)
            }
        }
    }

    /// Q5_0: `d`, `qh` u32, `qs` u8[16]: d·(q − 16). Q5_1: `d`, `m`, `qh`, `qs`: d·q + m. Bit k of
    /// `qh` is bit 4 of quant k.
    static func q5(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, hasMin: Bool) {
        let d = half(x, 0)
        let m: Float = hasMin ? half(x, 2) : 0
        let qhAt = hasMin ? 4 : 2
        let qh = u32(x, qhAt)
        for j in 0..<16 {
            let q = byte(x, qhAt + 4 + j)
            let lo = Int(q & 15) | Int((qh >> UInt32(j)) & 1) << 4
            let hi = Int(q >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
            if hasMin {
                y[j] = d * Float(lo) + m
                y[j + 16] = d * Float(hi) + m
            } else {
                y[j] = d * Float(lo - 16)
                y[j + 16] = d * Float(hi - 16)
            }
        }
    }

    /// ggml's `get_scale_min_k4`: 6-bit scale and min `j` (0..<8) from the 12 packed bytes at `s`.
    @inline(__always)
    static func scaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (Float, Float) {
        if j < 4 {
            return (Float(byte(s, j) & 63), Float(byte(s, j + 4) & 63))
        }
        let sc = (byte(s, j + 4) & 15) | ((byte(s, j - 4) >> 6) << 4)
        let m = (byte(s, j + 4) >> 4) | ((byte(s, j) >> 6) << 4)
        return (Float(sc), Float(m))
    }

    /// Q4_K: `d`, `dmin`, `scales` u8[12], `qs` u8[128]. Q5_K adds `qh` u8[32] before `qs`; bit
    /// 2c (low nibble) / 2c+1 (high nibble) of qh[l] adds 16 to the quant.
    static func q45_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, fiveBit: Bool) {
        let d = half(x, 0), dmin = half(x, 2)
        let scales = x + 4
        let qh = x + 16
        let qs = x + (fiveBit ? 48 : 16)
        for c in 0..<4 {
            let (sc1, m1) = scaleMin(scales, 2 * c)
            let (sc2, m2) = scaleMin(scales, 2 * c + 1)
            let d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2
            for l in 0..<32 {
                let q = byte(qs, 32 * c + l)
                var lo = Int(q & 15), hi = Int(q >> 4)
                if fiveBit {
                    let h = byte(qh, l)
                    lo += Int((h >> UInt8(2 * c)) & 1) << 4
                    hi += Int((h >> UInt8(2 * c + 1)) & 1) << 4
                }
                y[64 * c + l] = d1 * Float(lo) - min1
                y[64 * c + 32 + l] = d2 * Float(hi) - min2
            }
        }
    }

    /// Q6_K: `ql` u8[128], `qh` u8[64], `scales` int8[16], `d` f16.
    static func q6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 208)
        for h in 0..<2 {
            let L = x + 64 * h, Q = x + 128 + 32 * h, S = x + 192 + 8 * h
            for l in 0..<32 {
                let a = byte(L, l), b = byte(L, l + 32), q = byte(Q, l)
                let q0 = Int(a & 15) | Int(q & 3) << 4, q1 = Int(b & 15) | Int((q >> 2) & 3) << 4
                let q2 = Int(a >> 4) | Int((q >> 4) & 3) << 4, q3 = Int(b >> 4) | Int((q >> 6) & 3) << 4
                func put(_ t: Int, _ qt: Int) {
                    let s = Float(Int8(bitPattern: byte(S, l / 16 + 2 * t)))
                    y[128 * h + 32 * t + l] = d * s * Float(qt - 32)
                }
                put(0, q0); put(1, q1); put(2, q2); put(3, q3)
            }
        }
    }

    /// Q2_K: `scales` u8[16] (low nibble scale, high nibble min), `qs` u8[64], `d`, `dmin`.
    static func q2_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 80), dmin = half(x, 82)
        var out = 0, sc = 0
        for n in 0..<2 {
            let q = x + 16 + 32 * n
            for j in 0..<4 {
                let shift = UInt8(2 * j)
                for half_ in 0..<2 {
                    let s = byte(x, sc)
                    sc += 1
                    let dl = d * Float(s & 15), ml = dmin * Float(s >> 4)
                    for l in 0..<16 {
                        y[out] = dl * Float((byte(q, 16 * half_ + l) >> shift) & 3) - ml
                        out += 1
                    }
                }
            }
        }
    }

    /// Q3_K: `hmask` u8[32], `qs` u8[64], `scales` (16 6-bit values in 12 bytes), `d`.
    static func q3_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 108)
        let a0 = u32(x, 96), a1 = u32(x, 100), tmp = u32(x, 104)
        let k1: UInt32 = 0x0303_0303, k2: UInt32 = 0x0F0F_0F0F
        let aux = [
            (a0 & k2) | (((tmp >> 0) & k1) << 4),
            (a1 & k2) | (((tmp >> 2) & k1) << 4),
            ((a0 >> 4) & k2) | (((tmp >> 4) & k1) << 4),
            ((a1 >> 4) & k2) | (((tmp >> 6) & k1) << 4),
        ]
        func scale(_ i: Int) -> Int { Int(Int8(bitPattern: UInt8(truncatingIfNeeded: aux[i / 4] >> UInt32(8 * (i % 4))))) - 32 }
        var out = 0, si = 0
        var m: UInt8 = 1
        for n in 0..<2 {
            let q = x + 32 + 32 * n
            for j in 0..<4 {
                let shift = UInt8(2 * j)
                for half_ in 0..<2 {
                    let dl = d * Float(scale(si))
                    si += 1
                    for l in 0..<16 {
                        let i = 16 * half_ + l
                        let v = Int((byte(q, i) >> shift) & 3) - (byte(x, i) & m != 0 ? 0 : 4)
                        y[out] = dl * Float(v)
                        out += 1
                    }
                }
                m <<= 1
            }
        }
    }
}
