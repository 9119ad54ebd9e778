// Reading GGUF, llama.cpp's model format (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
//
//   "GGUF" | version u32 (2 or 3) | tensor_count u64 | kv_count u64
//   kv_count × (key: string | value_type u32 | value)      string = u64 length + UTF-8 bytes
//   tensor_count × (name: string | n_dims u32 | ne[n_dims] u64 | ggml_type u32 | offset u64)
//   padding to general.alignment (default 32), then the data section; tensor i starts at
//   data_start + offset_i.
//
// Every count and length read from the file is checked against the bytes that remain before it
// is used, and every tensor's byte range against the file size, so a corrupt file fails at open
// with a message naming the file, the key or tensor and the numbers — never a huge allocation.
// The file is memory-mapped; tensors are decoded on demand (GGUFDequantize.swift).

import Foundation

/// A GGUF metadata value.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// Element type id and elements.
    case array(GGUFValueType, [GGUFValue])

    /// The value as an integer, for any integer type that fits in Int.
    public var int: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int64(let v): return Int(v)
        default: return nil
        }
    }
    /// The value as a float, for FLOAT32/FLOAT64.
    public var float: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return nil
        }
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [GGUFValue]? { if case .array(_, let a) = self { return a }; return nil }

    /// The GGUF type id of the value.
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }
}

/// GGUF metadata value types.
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64

    /// Bytes of one value of a fixed-size type; strings take at least 8 (their length), arrays 12.
    var minimumSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64, .string: return 8
        case .array: return 12
        }
    }
}

/// One tensor's header entry.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions fastest-first (`ne[0]` is the contiguous row length): the reverse of PyTorch's shape.
    public let ne: [Int]
    public let type: GGMLType
    /// Absolute byte range in the file.
    public let bytes: Range<Int>
    public var count: Int { ne.reduce(1, *) }
    /// The PyTorch/HF shape (`ne` reversed).
    public var shape: [Int] { ne.reversed() }
}

/// A GGUF file opened for reading (memory-mapped, header validated).
public struct GGUFFile: Sendable {
    /// The file path (used in every error message).
    public let path: String
    public let version: UInt32
    /// Metadata keys in file order.
    public let keys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataStart: Int
    private let data: Data
    private let index: [String: Int]

    /// The header entry of tensor `name`, if present.
    public func tensor(_ name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// Maps and validates the file at `url`.
    public init(url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw ModelError("\(url.path): cannot read (\(error.localizedDescription)); check that the file exists and is readable")
        }
        try self.init(data: data, path: url.path)
    }

    /// Validates GGUF bytes already in memory; `path` names them in errors.
    public init(data: Data, path: String) throws {
        self.path = path
        self.data = data
        var r = GGUFCursor(data: data, path: path)
        let magic = try r.bytes(4, what: "the magic")
        guard magic == Array("GGUF".utf8) else {
            let text = String(decoding: magic.map { (32..<127).contains($0) ? $0 : UInt8(ascii: ".") }, as: UTF8.self)
            let hex = magic.map { String(format: "%02x", $0) }.joined(separator: " ")
            throw ModelError("\(path): not a GGUF file: magic '\(text)' (\(hex)), expected 'GGUF'")
        }
        version = try r.u32(what: "the version")
        guard version == 2 || version == 3 else {
            throw ModelError("\(path): GGUF version \(version) is not supported (Rondo reads versions 2 and 3); re-convert the model with a current llama.cpp")
        }
        let tensorCount = try r.u64(what: "the tensor count")
        let kvCount = try r.u64(what: "the metadata count")
        // Each entry needs at least 8 + 4 + 1 (kv) or 8 + 4 + 4 + 8 (tensor) bytes.
        try r.checkCount(kvCount, elementSize: 13, what: "metadata count \(kvCount)")
        var keys: [String] = [], metadata: [String: GGUFValue] = [:]
        for _ in 0..<Int(kvCount) {
            let key = try r.string(what: "a metadata key")
            let raw = try r.u32(what: "the type of metadata '\(key)'")
            guard let type = GGUFValueType(rawValue: raw) else {
                throw ModelError("\(path): metadata '\(key)': unknown value type \(raw) (known: 0–12)")
            }
            let value = try r.value(type, key: key)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw ModelError("\(path): metadata '\(key)' appears twice")
            }
            keys.append(key)
        }
        self.keys = keys
        self.metadata = metadata
        let align = metadata["general.alignment"]?.int ?? 32
        guard align > 0, align & (align - 1) == 0 else {
            throw ModelError("\(path): metadata 'general.alignment' = \(align) is not a power of two")
        }
        alignment = align
        try r.checkCount(tensorCount, elementSize: 24, what: "tensor count \(tensorCount)")
        var raw: [(name: String, ne: [Int], type: GGMLType, offset: UInt64)] = []
        for _ in 0..<Int(tensorCount) { raw.append(try r.tensorInfo()) }
        dataStart = (r.position + align - 1) / align * align
        tensors = try Self.place(raw, dataStart: dataStart, alignment: align, fileSize: data.count, path: path)
        var index: [String: Int] = [:]
        for (i, t) in tensors.enumerated() {
            guard index.updateValue(i, forKey: t.name) == nil else {
                throw ModelError("\(path): tensor '\(t.name)' appears twice")
            }
        }
        self.index = index
    }

    /// Byte ranges of the tensors, checked for alignment and against the file size in file order,
    /// so the first tensor a truncation cuts is the one named.
    private static func place(
        _ raw: [(name: String, ne: [Int], type: GGMLType, offset: UInt64)],
        dataStart: Int, alignment: Int, fileSize: Int, path: String
    ) throws -> [GGUFTensorInfo] {
        var out: [GGUFTensorInfo] = []
        for t in raw {
            guard t.ne[0] % t.type.blockValues == 0 else {
                throw ModelError("\(path): tensor '\(t.name)': row length ne[0] = \(t.ne[0]) is not a multiple of \(t.type.name)'s block of \(t.type.blockValues) values")
            }
            guard t.offset % UInt64(alignment) == 0 else {
                throw ModelError("\(path): tensor '\(t.name)': data offset \(t.offset) is not a multiple of the alignment \(alignment)")
            }
            var size = t.ne[0] / t.type.blockValues * t.type.blockBytes
            for d in t.ne.dropFirst() {
                let (p, o) = size.multipliedReportingOverflow(by: d)
                guard !o else { throw ModelError("\(path): tensor '\(t.name)': shape \(t.ne) is too large") }
                size = p
            }
            let begin = t.offset <= UInt64(Int.max - dataStart) ? dataStart + Int(t.offset) : Int.max
            let (end, o) = begin.addingReportingOverflow(size)
            out.append(GGUFTensorInfo(name: t.name, ne: t.ne, type: t.type, bytes: begin..<(o ? Int.max : end)))
        }
        for t in out.sorted(by: { $0.bytes.lowerBound < $1.bytes.lowerBound }) where t.bytes.upperBound > fileSize {
            let b = t.bytes.lowerBound == Int.max ? "offset past \(Int.max)" : "bytes [\(t.bytes.lowerBound), \(t.bytes.upperBound))"
            throw ModelError("\(path): truncated: tensor '\(t.name)' needs \(b), file has \(fileSize); re-download or re-convert the file")
        }
        return out
    }

    /// The raw bytes of tensor `t` (a slice of the mapped file).
    public func withBytes<R>(_ t: GGUFTensorInfo, _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        try data.withUnsafeBytes { raw in try body(raw.baseAddress! + t.bytes.lowerBound) }
    }

    /// Decodes tensor `t` to float32 into `out`, which must hold exactly its element count.
    public func read(_ t: GGUFTensorInfo, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard out.count == t.count else {
            throw ModelError("\(path): tensor '\(t.name)' has \(t.count) values, destination holds \(out.count)")
        }
        guard let dst = out.baseAddress, t.count > 0 else { return }
        withBytes(t) { src in t.type.dequantize(src, count: t.count, into: dst) }
    }
}

/// A bounds-checked little-endian reader over the header.
struct GGUFCursor {
    let data: Data
    let path: String
    private(set) var position = 0

    init(data: Data, path: String) {
        self.data = data
        self.path = path
    }

    var remaining: Int { data.count - position }

    private func short(_ n: Int, _ what: String) -> ModelError {
        ModelError("\(path): truncated: reading \(what) needs \(n) bytes at offset \(position), file has \(data.count)")
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type, what: String) throws -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw short(n, what) }
        let v = data.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: position, as: T.self)) }
        position += n
        return v
    }

    mutating func u32(what: String) throws -> UInt32 { try load(UInt32.self, what: what) }
    mutating func u64(what: String) throws -> UInt64 { try load(UInt64.self, what: what) }

    mutating func bytes(_ n: Int, what: String) throws -> [UInt8] {
        guard remaining >= n else { throw short(n, what) }
        let out = [UInt8](data[(data.startIndex + position)..<(data.startIndex + position + n)])
        position += n
        return out
    }

    /// Fails unless `count` elements of at least `elementSize` bytes could fit in what remains.
    func checkCount(_ count: UInt64, elementSize: Int, what: String) throws {
        guard count <= UInt64(remaining / elementSize) else {
            throw ModelError("\(path): \(what) runs past the end of the file (\(data.count) bytes, \(remaining) left at offset \(position))")
        }
    }

    mutating func string(what: String) throws -> String {
        let n = try u64(what: "the length of \(what)")
        guard n <= UInt64(remaining) else {
            throw ModelError("\(path): \(what): string length \(n) runs past the end of the file (\(data.count) bytes, \(remaining) left at offset \(position)); the file is corrupt")
        }
        let b = try bytes(Int(n), what: what)
        guard let s = String(validating: b, as: UTF8.self) else {
            throw ModelError("\(path): \(what) is not valid UTF-8")
        }
        return s
    }

    mutating func value(_ type: GGUFValueType, key: String) throws -> GGUFValue {
        let what = "metadata '\(key)'"
        switch type {
        case .uint8: return .uint8(try load(UInt8.self, what: what))
        case .int8: return .int8(try load(Int8.self, what: what))
        case .uint16: return .uint16(try load(UInt16.self, what: what))
        case .int16: return .int16(try load(Int16.self, what: what))
        case .uint32: return .uint32(try load(UInt32.self, what: what))
        case .int32: return .int32(try load(Int32.self, what: what))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self, what: what)))
        case .bool:
            let b = try load(UInt8.self, what: what)
            guard b <= 1 else { throw ModelError("\(path): \(what): bool byte is \(b), expected 0 or 1") }
            return .bool(b == 1)
        case .string: return .string(try string(what: what))
        case .uint64: return .uint64(try load(UInt64.self, what: what))
        case .int64: return .int64(try load(Int64.self, what: what))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self, what: what)))
        case .array:
            let raw = try u32(what: "the element type of \(what)")
            guard let et = GGUFValueType(rawValue: raw), et != .array else {
                throw ModelError("\(path): \(what): array element type \(raw) is not supported (known: 0–8, 10–12; no nested arrays)")
            }
            let n = try u64(what: "the length of \(what)")
            try checkCount(n, elementSize: et.minimumSize, what: "\(what): array length \(n)")
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { items.append(try value(et, key: key)) }
            return .array(et, items)
        }
    }

    mutating func tensorInfo() throws -> (name: String, ne: [Int], type: GGMLType, offset: UInt64) {
        let name = try string(what: "a tensor name")
        let nd = try u32(what: "the rank of tensor '\(name)'")
        guard (1...4).contains(nd) else {
            throw ModelError("\(path): tensor '\(name)': \(nd) dimensions (GGUF allows 1 to 4)")
        }
        var ne: [Int] = []
        for _ in 0..<nd {
            let d = try u64(what: "the shape of tensor '\(name)'")
            guard d >= 1, d <= UInt64(Int32.max) else {
                throw ModelError("\(path): tensor '\(name)': dimension \(d) is out of range")
            }
            ne.append(Int(d))
        }
        let id = try u32(what: "the type of tensor '\(name)'")
        let type = try GGMLType.resolve(id, tensor: name, path: path)
        let offset = try u64(what: "the offset of tensor '\(name)'")
        return (name, ne, type, offset)
    }
}
