// Writing GGUF version 3 (the layout GGUF.swift reads), as gguf-py's `GGUFWriter` does:
// header, metadata in the order given, tensor infos, zero padding to the alignment, then each
// tensor's bytes at an aligned offset. Written through AtomicFile, so a failed export leaves the
// target untouched.
//
// F16 rounds to nearest even (numpy's astype(float16), ggml's conversion). Q8_0 is ggml's
// `quantize_row_q8_0_ref`: per block of 32, d = max|x| / 127, q = roundf(x / d) computed with the
// float32 d (half-away-from-zero), d stored as a half.

import Foundation

/// A tensor to write: its GGUF name, `ne` (fastest-first), type, and its bytes — encoded only
/// when the writer reaches it, so an export holds one encoded tensor at a time.
struct GGUFTensorData {
    let name: String
    let ne: [Int]
    let type: GGMLType
    let byteCount: Int
    let encode: () -> [UInt8]

    init(name: String, ne: [Int], type: GGMLType, encode: @escaping () -> [UInt8]) {
        self.name = name
        self.ne = ne
        self.type = type
        byteCount = ne.reduce(1, *) / type.blockValues * type.blockBytes
        self.encode = encode
    }

    init(name: String, ne: [Int], type: GGMLType, bytes: [UInt8]) {
        self.init(name: name, ne: ne, type: type, encode: { bytes })
    }
}

enum GGUFWriter {
    static let alignment = 32

    /// Writes a GGUF v3 file with `metadata` (in order) and `tensors` (in order) to `url`.
    static func write(metadata: [(String, GGUFValue)], tensors: [GGUFTensorData], to url: URL) throws {
        var head = ByteSink()
        head.append(Array("GGUF".utf8))
        head.append(UInt32(3))
        head.append(UInt64(tensors.count))
        head.append(UInt64(metadata.count))
        for (key, value) in metadata {
            head.append(key)
            head.append(value.type.rawValue)
            head.append(value: value)
        }
        var offset = 0
        for t in tensors {
            head.append(t.name)
            head.append(UInt32(t.ne.count))
            for d in t.ne { head.append(UInt64(d)) }
            head.append(t.type.rawValue)
            head.append(UInt64(offset))
            offset = padded(offset + t.byteCount)
        }
        head.bytes.append(contentsOf: [UInt8](repeating: 0, count: padded(head.bytes.count) - head.bytes.count))
        try AtomicFile.write(to: url) { w in
            try head.bytes.withUnsafeBytes { try w.write($0) }
            for t in tensors {
                let bytes = t.encode()
                precondition(bytes.count == t.byteCount, "tensor '\(t.name)': encoded \(bytes.count) bytes, expected \(t.byteCount)")
                try bytes.withUnsafeBytes { try w.write($0) }
                let pad = [UInt8](repeating: 0, count: padded(bytes.count) - bytes.count)
                try pad.withUnsafeBytes { try w.write($0) }
            }
        }
    }

    static func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

/// Little-endian serialisation of header fields.
struct ByteSink {
    var bytes: [UInt8] = []

    mutating func append(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func append(_ s: String) {
        append(UInt64(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }

    mutating func append(value: GGUFValue) {
        switch value {
        case .uint8(let v): append(v)
        case .int8(let v): append(v)
        case .uint16(let v): append(v)
        case .int16(let v): append(v)
        case .uint32(let v): append(v)
        case .int32(let v): append(v)
        case .float32(let v): append(v.bitPattern)
        case .bool(let v): append(UInt8(v ? 1 : 0))
        case .string(let s): append(s)
        case .uint64(let v): append(v)
        case .int64(let v): append(v)
        case .float64(let v): append(v.bitPattern)
        case .array(let type, let items):
            append(type.rawValue)
            append(UInt64(items.count))
            for item in items { append(value: item) }
        }
    }
}

/// ggml's reference encoders for the types Rondo exports.
enum Quantize {
    /// Encodes `values` (row length a multiple of the type's block) as `type`.
    static func encode(_ values: UnsafeBufferPointer<Float>, as type: GGMLType) -> [UInt8] {
        var out = ByteSink()
        out.bytes.reserveCapacity(values.count / type.blockValues * type.blockBytes)
        switch type {
        case .f32:
            for v in values { out.append(v.bitPattern) }
        case .f16:
            for v in values { out.append(HalfFloat.f16Bits(v)) }
        case .q8_0:
            for b in stride(from: 0, to: values.count, by: 32) { q8_0(values[b..<(b + 32)], into: &out) }
        default:
            preconditionFailure("Rondo does not export \(type.name)")
        }
        return out.bytes
    }

    /// One Q8_0 block (`quantize_row_q8_0_ref`).
    static func q8_0(_ x: Slice<UnsafeBufferPointer<Float>>, into out: inout ByteSink) {
        var amax: Float = 0
        for v in x { amax = max(amax, abs(v)) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        out.append(HalfFloat.f16Bits(d))
        for v in x { out.append(Int8((v * id).rounded(.toNearestOrAwayFromZero))) }
    }
}
