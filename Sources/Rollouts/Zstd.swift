// Streaming zstd compression and decompression over files (libzstd's ZSTD_compressStream2 /
// ZSTD_decompressStream), with the frame content checksum on, so corruption is detected on read.
//
// Memory is bounded by the chunk sizes whatever the file size: the writer compresses as records
// arrive, the reader decompresses 1 MiB input chunks into a reusable output buffer.

import CZstd
import Crypto
import Foundation
import RondoSupport

/// A zstd or file-system failure, naming the file.
public struct BufferError: Error, CustomStringConvertible, Sendable {
    /// `misplaced`: a campaign round's buffer whose header belongs to another round.
    public enum Kind: Sendable { case io, checksum, truncated, corrupt, record, manifest, misplaced }
    public let kind: Kind
    public let description: String
    public init(_ kind: Kind, _ description: String) { self.kind = kind; self.description = description }
}

/// Compresses a byte stream into a file as a sequence of independent zstd frames of
/// `frameSize` input bytes, each with its own content checksum (zstd concatenates frames
/// transparently: `zstdcat` reads the file as one stream). Frames are compressed on Dispatch
/// workers and written in order, so the bytes do not depend on the number of workers, and a
/// damaged file can be salvaged frame by frame.
public final class ZstdFileWriter {
    public let path: String
    private let fd: Int32
    private let level: Int32
    private let frameSize: Int
    private let maxInFlight: Int
    private var chunk: [UInt8] = []
    private var inFlight: [FrameJob] = []
    /// Observes every compressed byte written, in file order (for hashing).
    private let onCompressed: (UnsafeRawBufferPointer) -> Void
    public private(set) var compressedBytes = 0
    public private(set) var uncompressedBytes = 0

    final class FrameJob: @unchecked Sendable {
        let input: [UInt8]
        var output: [UInt8] = []
        var error: String?
        let done = DispatchSemaphore(value: 0)
        init(_ input: [UInt8]) { self.input = input }
    }

    /// Opens `path` for writing (created or truncated). `workers` frames compress at once.
    public init(path: String, level: Int32 = 1, workers: Int = 2, frameSize: Int = 4 << 20,
                onCompressed: @escaping (UnsafeRawBufferPointer) -> Void = { _ in }) throws {
        self.path = path
        self.level = level
        self.frameSize = frameSize
        self.maxInFlight = max(1, workers)
        self.onCompressed = onCompressed
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BufferError(.io, "\(path): cannot create (\(String(cString: strerror(errno))))") }
        chunk.reserveCapacity(frameSize)
    }

    deinit {
        for job in inFlight { job.done.wait() }
        close(fd)
    }

    /// Adds bytes; full frames are handed to the workers.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        uncompressedBytes += bytes.count
        var rest = bytes
        while !rest.isEmpty {
            let n = min(rest.count, frameSize - chunk.count)
            chunk.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<n]))
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            if chunk.count == frameSize { try submit() }
        }
    }

    /// Compresses the last frame, writes everything, and makes the file durable (fsync).
    public func finish() throws {
        if !chunk.isEmpty || compressedBytes == 0 && inFlight.isEmpty { try submit() }
        while !inFlight.isEmpty { try writeOldest() }
        guard fsync(fd) == 0 else { throw BufferError(.io, "\(path): fsync failed (\(String(cString: strerror(errno))))") }
    }

    private func submit() throws {
        let job = FrameJob(chunk)
        chunk = []
        chunk.reserveCapacity(frameSize)
        let level = self.level
        DispatchQueue.global().async {
            job.output = [UInt8](repeating: 0, count: ZSTD_compressBound(job.input.count))
            guard let cctx = ZSTD_createCCtx() else { job.error = "zstd context allocation failed"; job.done.signal(); return }
            defer { ZSTD_freeCCtx(cctx) }
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
            let n = job.output.withUnsafeMutableBytes { o in
                job.input.withUnsafeBytes { i in ZSTD_compress2(cctx, o.baseAddress, o.count, i.baseAddress, i.count) }
            }
            if ZSTD_isError(n) != 0 { job.error = String(cString: ZSTD_getErrorName(n)) } else { job.output.removeLast(job.output.count - n) }
            job.done.signal()
        }
        inFlight.append(job)
        while inFlight.count > maxInFlight { try writeOldest() }
    }

    private func writeOldest() throws {
        let job = inFlight.removeFirst()
        job.done.wait()
        if let e = job.error { throw BufferError(.io, "\(path): zstd compression failed: \(e)") }
        try job.output.withUnsafeBytes { out in
            try writeAll(out)
            onCompressed(out)
        }
        compressedBytes += job.output.count
    }

    private func writeAll(_ chunk: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < chunk.count {
            let n = Foundation.write(fd, chunk.baseAddress! + off, chunk.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw BufferError(.io, "\(path): write failed (\(String(cString: strerror(errno)))); is the disk full?")
            }
            off += n
        }
    }
}

/// Decompresses a zstd file frame by frame, handing out each frame's bytes only after its
/// content checksum verified (memory: one frame).
public final class ZstdFileReader {
    public let path: String
    private let fd: Int32
    private let dctx: OpaquePointer
    private var input: [UInt8]
    private var inputFill = 0, inputPos = 0
    private var output: [UInt8]
    /// Decompressed bytes of the current frame, held until the frame's checksum is verified.
    private var frame: [UInt8] = []
    private var atEOF = false
    private var frameOpen = false
    private var hasher = SHA256()
    public private(set) var compressedBytes = 0

    /// Hex SHA-256 of all compressed bytes read so far.
    public var sha256Hex: String { hex(hasher.finalize()) }

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BufferError(.io, "\(path): cannot open (\(String(cString: strerror(errno))))") }
        guard let d = ZSTD_createDCtx() else { close(fd); throw BufferError(.io, "\(path): zstd context allocation failed") }
        dctx = d
        input = [UInt8](repeating: 0, count: 1 << 20)
        output = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize() * 4)
    }

    deinit {
        ZSTD_freeDCtx(dctx)
        close(fd)
    }

    /// Calls `body` with the next verified frame's bytes; returns false at a clean end of file.
    /// Throws on a checksum failure, corrupt data or a truncated frame.
    public func next(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        while true {
            if inputPos == inputFill {
                if atEOF {
                    if frameOpen {
                        throw BufferError(.truncated, "\(path): truncated (the zstd frame ends early after \(compressedBytes) bytes); the file was cut off — restore it or read it with --salvage")
                    }
                    return false
                }
                let n = input.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 { throw BufferError(.io, "\(path): read failed (\(String(cString: strerror(errno))))") }
                if n == 0 { atEOF = true; continue }
                input.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                compressedBytes += n
                inputFill = n
                inputPos = 0
            }
            var produced = 0
            let r: Int = try input.withUnsafeBytes { ib in
                try output.withUnsafeMutableBytes { ob in
                    var inb = ZSTD_inBuffer(src: ib.baseAddress, size: inputFill, pos: inputPos)
                    var outb = ZSTD_outBuffer(dst: ob.baseAddress, size: ob.count, pos: 0)
                    let r = ZSTD_decompressStream(dctx, &outb, &inb)
                    if ZSTD_isError(r) != 0 {
                        let code = ZSTD_getErrorCode(r)
                        let kind: BufferError.Kind = code == ZSTD_error_checksum_wrong ? .checksum : .corrupt
                        let what = code == ZSTD_error_checksum_wrong ? "zstd content checksum mismatch" : "corrupt zstd data"
                        throw BufferError(kind, "\(path): \(what) (\(String(cString: ZSTD_getErrorName(r)))) near compressed byte \(compressedBytes - inputFill + Int(inb.pos)); the file is damaged — restore it or read it with --salvage")
                    }
                    inputPos = inb.pos
                    produced = outb.pos
                    return r
                }
            }
            frameOpen = r != 0
            if produced > 0 { output.withUnsafeBytes { frame.append(contentsOf: $0[0..<produced]) } }
            if !frameOpen && !frame.isEmpty {
                // The frame ended and zstd verified its checksum: its bytes can be trusted.
                defer { frame.removeAll(keepingCapacity: true) }
                try frame.withUnsafeBytes { try body($0) }
                return true
            }
        }
    }
}
