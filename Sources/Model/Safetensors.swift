// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// u64 header length N, N bytes of JSON header
//   {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
// then the data section; offsets are relative to its start, values are little-endian.
//
// The reader maps the file and validates the whole header up front (sizes, bounds, overlaps), so
// a truncated or corrupt file fails at open with a message naming the file and tensor. Reading
// converts F32, F16 and BF16 to float32. The writer streams into an atomic file replacement.

import Foundation

/// Element types of the safetensors format.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case i64 = "I64", u64 = "U64", f64 = "F64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8e4m3, .f8e5m2: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .i64, .u64, .f64: return 8
        }
    }

    /// Whether Rondo converts this type to float32 (and can write it).
    public var isSupportedFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }
}

/// A dense float32 tensor (row-major).
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]
    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// A safetensors file opened for reading (memory-mapped).
public struct SafetensorsFile: Sendable {
    /// One tensor's header entry.
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let dtype: SafetensorsDType
        public let shape: [Int]
        /// Byte range relative to the start of the data section.
        public let dataOffsets: Range<Int>
        public var count: Int { shape.reduce(1, *) }
    }

    /// The file path (used in every error message).
    public let path: String
    /// The `__metadata__` string map (empty if absent).
    public let metadata: [String: String]
    /// Header entries by tensor name.
    public let infos: [String: TensorInfo]
    /// Length of the JSON header in bytes (N).
    public let headerLength: Int
    private let data: Data
    private let dataStart: Int

    /// Tensor names, sorted.
    public var names: [String] { infos.keys.sorted() }

    /// The header entry of `name`, if present.
    public func info(_ name: String) -> TensorInfo? { infos[name] }

    /// Maps and validates the file at `url`.
    public init(url: URL) throws {
        let path = url.path
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw ModelError("\(path): cannot read (\(error.localizedDescription)); check that the file exists and is readable")
        }
        try self.init(data: data, path: path)
    }

    /// Validates safetensors bytes already in memory; `path` names them in errors.
    public init(data: Data, path: String) throws {
        self.path = path
        self.data = data
        let fileSize = data.count
        let redo = "the file is truncated or corrupt; re-download or re-save it"
        guard fileSize >= 8 else {
            throw ModelError("\(path): \(fileSize) bytes, shorter than the 8-byte safetensors header length; \(redo)")
        }
        let n: UInt64 = data.withUnsafeBytes { raw in
            UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        }
        guard n <= UInt64(fileSize - 8) else {
            throw ModelError("\(path): header length \(n) bytes runs beyond the end of the file (\(fileSize) bytes); \(redo)")
        }
        headerLength = Int(n)
        dataStart = 8 + headerLength
        let dataSize = fileSize - dataStart

        let header: JSONValue
        do {
            header = try JSONDecoder().decode(JSONValue.self, from: data.subdata(in: (data.startIndex + 8)..<(data.startIndex + dataStart)))
        } catch {
            throw ModelError("\(path): the safetensors header is not valid JSON; \(redo)")
        }
        guard let object = header.object else {
            throw ModelError("\(path): the safetensors header is not a JSON object; \(redo)")
        }

        var metadata: [String: String] = [:]
        var infos: [String: TensorInfo] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let m = value.object else {
                    throw ModelError("\(path): '__metadata__' in the safetensors header is not an object; \(redo)")
                }
                for (k, v) in m {
                    guard let s = v.string else {
                        throw ModelError("\(path): '__metadata__' key '\(k)' is not a string; \(redo)")
                    }
                    metadata[k] = s
                }
                continue
            }
            func bad(_ what: String) -> ModelError {
                ModelError("\(path): tensor '\(name)': \(what); \(redo)")
            }
            guard let entry = value.object else { throw bad("header entry is not an object") }
            guard let dtypeName = entry["dtype"]?.string else { throw bad("missing 'dtype'") }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw ModelError("\(path): tensor '\(name)' has unknown dtype '\(dtypeName)' (known: \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", "))); re-save the checkpoint as F32, F16 or BF16")
            }
            guard let dims = entry["shape"]?.array else { throw bad("missing 'shape'") }
            var shape: [Int] = []
            for d in dims {
                guard let i = d.int, i >= 0 else { throw bad("shape \(dims) is not a list of non-negative integers") }
                shape.append(i)
            }
            guard let offs = entry["data_offsets"]?.array, offs.count == 2,
                  let begin = offs[0].int, let end = offs[1].int, begin >= 0, begin <= end
            else { throw bad("'data_offsets' is not [begin, end] with 0 ≤ begin ≤ end") }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw bad("shape \(shape) is too large") }
                count = p
            }
            let (bytes, o) = count.multipliedReportingOverflow(by: dtype.size)
            guard !o, bytes == end - begin else {
                throw bad("shape \(shape) × \(dtype.rawValue) (\(dtype.size) bytes) needs \(o ? "too many" : String(bytes)) bytes but data_offsets [\(begin), \(end)] span \(end - begin)")
            }
            guard end <= dataSize else {
                throw ModelError("\(path): tensor '\(name)' data_offsets [\(begin), \(end)] lie outside the \(dataSize)-byte data section; \(redo)")
            }
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
        }
        // No two tensors may share bytes (empty tensors occupy none).
        let ranges = infos.values.filter { !$0.dataOffsets.isEmpty }
            .sorted { ($0.dataOffsets.lowerBound, $0.name) < ($1.dataOffsets.lowerBound, $1.name) }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.dataOffsets.lowerBound < a.dataOffsets.upperBound {
            throw ModelError("\(path): tensors '\(a.name)' [\(a.dataOffsets.lowerBound), \(a.dataOffsets.upperBound)) and '\(b.name)' [\(b.dataOffsets.lowerBound), \(b.dataOffsets.upperBound)) overlap; \(redo)")
        }
        // The tensors fill the data section exactly, as the HF library requires: no gap, nothing after.
        var covered = 0
        for r in ranges {
            guard r.dataOffsets.lowerBound == covered else {
                throw ModelError("\(path): bytes [\(covered), \(r.dataOffsets.lowerBound)) of the data section belong to no tensor (before '\(r.name)'); \(redo)")
            }
            covered = r.dataOffsets.upperBound
        }
        guard covered == dataSize else {
            throw ModelError("\(path): \(dataSize - covered) trailing bytes after the last tensor's data (the tensors use \(covered) of \(dataSize) bytes); the file was appended to or is corrupt, re-download or re-save it")
        }
        self.metadata = metadata
        self.infos = infos
    }

    /// Converts tensor `name` to float32 into `out`, which must hold exactly its element count.
    public func read(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let info = infos[name] else {
            throw ModelError("\(path): no tensor named '\(name)'")
        }
        guard info.dtype.isSupportedFloat else {
            throw ModelError("\(path): tensor '\(name)' has dtype \(info.dtype.rawValue); Rondo reads F32, F16 and BF16 only — convert the checkpoint")
        }
        guard out.count == info.count else {
            throw ModelError("\(path): tensor '\(name)' has \(info.count) elements, destination holds \(out.count)")
        }
        let n = info.count
        guard n > 0, let dst = out.baseAddress else { return }
        data.withUnsafeBytes { raw in
            let src = raw.baseAddress! + dataStart + info.dataOffsets.lowerBound
            switch info.dtype {
            case .f32:
                #if _endian(little)
                UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
                #else
                for i in 0..<n {
                    dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
                #endif
            case .bf16:
                for i in 0..<n {
                    let b = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    dst[i] = Float(bitPattern: UInt32(b) << 16)
                }
            case .f16:
                for i in 0..<n {
                    dst[i] = HalfFloat.toFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            default:
                break
            }
        }
    }

    /// Tensor `name` as float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = infos[name] else { throw ModelError("\(path): no tensor named '\(name)'") }
        var values = [Float](repeating: 0, count: info.count)
        try values.withUnsafeMutableBufferPointer { try read(name, into: $0) }
        return Tensor(shape: info.shape, values: values)
    }

    /// Every tensor as float32.
    public func readAll() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in infos.keys { out[name] = try tensor(name) }
        return out
    }
}

// MARK: - Writing

extension SafetensorsFile {
    /// Writes `tensors` as a safetensors file, atomically. Header keys are sorted and the data is
    /// laid out in that order; the header is padded with spaces to a multiple of 8 bytes (as the
    /// HF `safetensors` library does). F16/BF16 round to nearest even.
    public static func write(
        _ tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
        dtype: SafetensorsDType = .f32,
        to url: URL,
        metadata: [String: String] = ["format": "pt"]
    ) throws {
        let path = url.path
        guard dtype.isSupportedFloat else {
            throw ModelError("\(path): cannot write dtype \(dtype.rawValue); Rondo writes F32, F16 or BF16")
        }
        var seen = Set<String>()
        for t in tensors {
            guard t.name != "__metadata__", !t.name.isEmpty else {
                throw ModelError("\(path): '\(t.name)' is not a valid tensor name")
            }
            guard seen.insert(t.name).inserted else { throw ModelError("\(path): tensor '\(t.name)' given twice") }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.values.count else {
                throw ModelError("\(path): tensor '\(t.name)' has shape \(t.shape) but \(t.values.count) values")
            }
        }
        let sorted = tensors.sorted { $0.name < $1.name }

        var header = "{"
        if !metadata.isEmpty {
            header += "\"__metadata__\":{"
            header += metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
            header += "},"
        }
        var offset = 0
        var entries: [String] = []
        for t in sorted {
            let bytes = t.values.count * dtype.size
            let shape = t.shape.map(String.init).joined(separator: ",")
            entries.append("\(jsonString(t.name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += entries.joined(separator: ",")
        header += "}"
        var headerBytes = Array(header.utf8)
        headerBytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8))

        try AtomicFile.write(to: url) { w in
            var n = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &n) { try w.write($0) }
            try headerBytes.withUnsafeBytes { try w.write($0) }
            let chunk = 1 << 16
            var scratch = [UInt16](repeating: 0, count: chunk)
            for t in sorted {
                guard let base = t.values.baseAddress, t.values.count > 0 else { continue }
                switch dtype {
                case .f32:
                    #if _endian(little)
                    try w.write(UnsafeRawBufferPointer(start: base, count: t.values.count * 4))
                    #else
                    for v in t.values {
                        var b = v.bitPattern.littleEndian
                        try withUnsafeBytes(of: &b) { try w.write($0) }
                    }
                    #endif
                default:
                    var i = 0
                    while i < t.values.count {
                        let m = min(chunk, t.values.count - i)
                        try scratch.withUnsafeMutableBufferPointer { s in
                            for j in 0..<m {
                                let h = dtype == .bf16 ? HalfFloat.bf16Bits(base[i + j]) : HalfFloat.f16Bits(base[i + j])
                                s[j] = h.littleEndian
                            }
                            try w.write(UnsafeRawBufferPointer(start: s.baseAddress, count: m * 2))
                        }
                        i += m
                    }
                }
            }
        }
    }
}

// MARK: - 16-bit float conversions (bit-level, so they work where Swift's Float16 is unavailable)

public enum HalfFloat {
    /// IEEE binary16 bits → float32 (exact).
    @inline(__always)
    public static func toFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            // Zero or subnormal: mant × 2⁻²⁴ (exact in float32).
            let v = Float(mant) * 0x1p-24
            return Float(bitPattern: v.bitPattern | sign)
        }
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// float32 → IEEE binary16 bits, round to nearest even (overflow → ±inf, NaN stays NaN).
    @inline(__always)
    public static func f16Bits(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xFF)
        let mant = x & 0x7F_FFFF
        if exp == 0xFF {
            return sign | 0x7C00 | (mant != 0 ? 0x200 | UInt16(truncatingIfNeeded: mant >> 13) : 0)
        }
        let e = exp - 112  // binary16 biased exponent
        if e >= 0x1F { return sign | 0x7C00 }
        if e <= 0 {
            // binary16 subnormal (or zero): value = m × 2⁻²⁴.
            if e < -10 { return sign }  // |f| < 2⁻²⁵: rounds to zero (2⁻²⁵ itself ties to even 0)
            let full = mant | 0x80_0000
            let shift = UInt32(14 - e)
            var m = full >> shift
            let rem = full & ((1 << shift) - 1)
            let half = UInt32(1) << (shift - 1)
            if rem > half || (rem == half && m & 1 == 1) { m += 1 }
            return sign | UInt16(m)
        }
        var h = UInt32(e) << 10 | (mant >> 13)
        let rem = mant & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) { h += 1 }  // a carry may round up to inf
        return sign | UInt16(h)
    }

    /// float32 → bfloat16 bits, round to nearest even (NaN stays a quiet NaN).
    @inline(__always)
    public static func bf16Bits(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        if f.isNaN { return UInt16(truncatingIfNeeded: x >> 16) | 0x40 }
        let rounded = x &+ 0x7FFF &+ ((x >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }
}
