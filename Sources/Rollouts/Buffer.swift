// Writing and reading a rollout buffer: `NAME.jsonl.zst` (zstd, content checksum on) plus
// `NAME.manifest.json` beside it (counts and the SHA-256 of the compressed file).
//
// Writing is streamed and crash safe: records are compressed into `NAME.jsonl.zst.tmp-PID`,
// which is fsynced and renamed into place only when complete; the manifest is written last
// (atomically), so a buffer without its manifest is incomplete. Reading is streamed with
// bounded memory and verifies the zstd checksum, every record, and the manifest.

import Crypto
import Foundation
import RondoSupport
import Kernels

/// The manifest beside a buffer file.
public struct BufferManifest: Codable, Sendable, Equatable {
    public struct FileEntry: Codable, Sendable, Equatable {
        public var sha256: String
        public var bytes: Int
        public var uncompressedBytes: Int
        enum CodingKeys: String, CodingKey { case sha256, bytes, uncompressedBytes = "uncompressed_bytes" }
    }
    public var schema: String = "rondo.rollout-manifest/1"
    public var records: Int
    public var pairs: Int
    public var prompts: Int
    public var files: [String: FileEntry]
    public var policySHA256: String
    public var configSHA256: String?
    public var round: Int?
    /// Seconds per phase that produced the buffer (informational; not part of any hash).
    public var timings: [String: Double]

    enum CodingKeys: String, CodingKey {
        case schema, records, pairs, prompts, files, round, timings
        case policySHA256 = "policy_sha256", configSHA256 = "config_sha256"
    }

    /// `NAME.manifest.json` for `NAME.jsonl.zst`.
    public static func url(for data: URL) -> URL {
        var name = data.lastPathComponent
        for suffix in [".jsonl.zst", ".zst", ".jsonl"] where name.hasSuffix(suffix) {
            name.removeLast(suffix.count)
            break
        }
        return data.deletingLastPathComponent().appendingPathComponent(name + ".manifest.json")
    }

    public static func load(_ url: URL) throws -> BufferManifest {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw BufferError(.manifest, "\(url.path): cannot read the manifest (\(error.localizedDescription)); a buffer without its manifest is incomplete")
        }
        do { return try JSONDecoder().decode(BufferManifest.self, from: data) } catch {
            throw BufferError(.manifest, "\(url.path): not a valid buffer manifest (\(error))")
        }
    }
}

/// Streams records into a new buffer.
public final class BufferWriter {
    public let url: URL
    private let temp: URL
    private var zstd: ZstdFileWriter?
    private var hasher = SHA256()
    private var json = JSONWriter()
    private var chunk: [UInt8] = []
    private let header: BufferHeader
    private var prompts = Set<Int>()
    public private(set) var records = 0
    public private(set) var pairs = 0

    /// Creates `url` (a `.jsonl.zst` path). Frames compress on `workers` threads; the bytes written
    /// do not depend on the worker count. Level 1 is the default: on rollout JSON it compresses as
    /// well as level 3 here and twice as fast (see `rondo bench buffer`).
    public init(url: URL, header: BufferHeader, level: Int32 = 1, workers: Int = 2) throws {
        self.url = url
        self.header = header
        temp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        chunk.reserveCapacity(1 << 20)
        let writer = try ZstdFileWriter(path: temp.path, level: level, workers: workers) { [unowned self] bytes in
            self.hasher.update(bufferPointer: bytes)
        }
        zstd = writer
        json.write(header)
        try flushLine()
    }

    deinit {
        if zstd != nil { try? FileManager.default.removeItem(at: temp) }  // abandoned: never visible
    }

    public func append(_ r: SampleRecord) throws {
        require(r.id == records, "sample ids must be 0, 1, 2, … in order")
        json.write(r)
        records += 1
        prompts.insert(r.promptIndex)
        try flushLine()
    }

    /// A pairwise judge exchange; written after the samples it names and before the pairs.
    public func append(_ c: ComparisonRecord) throws {
        guard c.a >= 0, c.a < records, c.b >= 0, c.b < records, c.a != c.b else {
            throw BufferError(.record, "\(url.path): comparison refers to samples \(c.a)/\(c.b), but only \(records) samples were written before it")
        }
        json.write(c)
        try flushLine()
    }

    public func append(_ p: PairRecord) throws {
        guard p.chosen >= 0, p.chosen < records, p.rejected >= 0, p.rejected < records else {
            throw BufferError(.record, "\(url.path): pair refers to sample \(p.chosen)/\(p.rejected), but only \(records) samples were written before it")
        }
        json.write(p)
        pairs += 1
        try flushLine()
    }

    private func flushLine() throws {
        chunk.append(contentsOf: json.bytes)
        chunk.append(0x0A)
        json.reset()
        if chunk.count >= 1 << 20 { try flushChunk() }
    }

    private func flushChunk() throws {
        guard let zstd else { return }
        try chunk.withUnsafeBytes { try zstd.write($0) }
        chunk.removeAll(keepingCapacity: true)
    }

    /// Completes the buffer: ends the zstd frame, fsyncs, renames into place, writes the manifest.
    @discardableResult
    public func finish(timings: [String: Double] = [:]) throws -> BufferManifest {
        guard let z = zstd else { throw BufferError(.io, "\(url.path): buffer already finished") }
        try flushChunk()
        try z.finish()
        let digest = hex(hasher.finalize())
        let entry = BufferManifest.FileEntry(sha256: digest, bytes: z.compressedBytes, uncompressedBytes: z.uncompressedBytes)
        zstd = nil
        guard rename(temp.path, url.path) == 0 else {
            throw BufferError(.io, "\(url.path): cannot rename the finished buffer into place (\(String(cString: strerror(errno))))")
        }
        let manifest = BufferManifest(records: records, pairs: pairs, prompts: prompts.count,
                                      files: [url.lastPathComponent: entry], policySHA256: header.policySHA256,
                                      configSHA256: header.configSHA256, round: header.round, timings: timings)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(enc.encode(manifest), to: BufferManifest.url(for: url))
        return manifest
    }
}

/// Decompresses (and hashes) frames on a background thread, one frame ahead of the parser.
final class FramePipe: @unchecked Sendable {
    private let reader: ZstdFileReader
    private var queue: [Result<[UInt8], Error>?] = []
    private let lock = NSLock()
    private let filled = DispatchSemaphore(value: 0)
    private let space = DispatchSemaphore(value: 2)
    private var hasher = SHA256()
    private var finished = false
    private var stopped = false

    init(_ reader: ZstdFileReader) {
        self.reader = reader
        let thread = Thread { [self] in produce() }
        thread.start()
    }

    deinit { stop() }

    private func produce() {
        // The reader hashes compressed input as it consumes it.
        while true {
            space.wait()
            if lock.withLock({ stopped }) { return }
            var item: Result<[UInt8], Error>?
            do {
                var frame: [UInt8] = []
                if try reader.next({ frame = Array($0) }) { item = .success(frame) } else { item = nil }
            } catch { item = .failure(error) }
            lock.withLock { queue.append(item) }
            filled.signal()
            if item == nil { return }
            if case .failure = item { return }
        }
    }

    /// The next verified frame, nil at the end; rethrows the reader's error.
    func next() throws -> [UInt8]? {
        guard !finished else { return nil }
        filled.wait()
        let item = lock.withLock { queue.removeFirst() }
        space.signal()
        switch item {
        case nil: finished = true; return nil
        case .success(let f): return f
        case .failure(let e): finished = true; throw e
        }
    }

    /// Hex SHA-256 of the whole compressed file (valid once `next()` returned nil).
    var sha256: String { reader.sha256Hex }

    /// Stops the producer early (the consumer gave up).
    func stop() {
        lock.withLock { stopped = true }
        space.signal()
    }
}

/// What a read found.
public struct ReadReport: Sendable {
    public var records = 0
    public var pairs = 0
    public var uncompressedBytes = 0
    /// The error that stopped a salvage read (nil when the whole buffer verified).
    public var damage: BufferError?
}

/// Streams the items of a buffer, verifying it.
public struct BufferReader {
    public let url: URL
    /// Check the file against its manifest (SHA-256, counts). A missing manifest is an error.
    public var verifyManifest = true
    /// On damage, keep the records read so far and report the damage instead of throwing.
    public var salvage = false

    public init(url: URL) { self.url = url }

    /// Calls `body` for every line in order. Lines are numbered from 1 in errors (line 1 = header).
    @discardableResult
    public func read(_ body: (BufferItem) throws -> Void) throws -> ReadReport {
        var report = ReadReport()
        do {
            try readAll(&report, body)
        } catch let e as BufferError where salvage {
            report.damage = e
        }
        return report
    }

    private func readAll(_ report: inout ReadReport, _ body: (BufferItem) throws -> Void) throws {
        let manifest = verifyManifest ? try BufferManifest.load(BufferManifest.url(for: url)) : nil
        let frames = FramePipe(try ZstdFileReader(path: url.path))
        defer { frames.stop() }
        var pending: [UInt8] = []
        var line = 0
        var sawHeader = false
        func handle(_ bytes: UnsafeRawBufferPointer) throws {
            line += 1
            var cursor = JSONCursor(bytes)
            let item: BufferItem
            do { item = try cursor.bufferItem() } catch let e as JSONParseError {
                throw BufferError(.record, "\(url.path): record \(line): \(e.description)")
            }
            switch item {
            case .header: sawHeader = true
            case .sample(let s):
                guard sawHeader else { throw BufferError(.record, "\(url.path): record \(line): no header line before the samples") }
                guard s.id == report.records else {
                    throw BufferError(.record, "\(url.path): record \(line): sample id \(s.id), expected \(report.records)")
                }
                report.records += 1
            case .pair: report.pairs += 1
            case .comparison: break
            }
            try body(item)
        }
        while let chunk = try frames.next() {
            report.uncompressedBytes += chunk.count
            try chunk.withUnsafeBytes { chunk in
                var start = 0
                for i in 0..<chunk.count where chunk[i] == 0x0A {
                    if pending.isEmpty {
                        try handle(UnsafeRawBufferPointer(rebasing: chunk[start..<i]))
                    } else {
                        pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<i]))
                        try pending.withUnsafeBytes { try handle($0) }
                        pending.removeAll(keepingCapacity: true)
                    }
                    start = i + 1
                }
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<chunk.count]))
            }
        }
        let digest = frames.sha256
        if !pending.isEmpty {
            throw BufferError(.truncated, "\(url.path): record \(line + 1) is cut off (no final newline); the file is incomplete")
        }
        guard let manifest else { return }
        let name = url.lastPathComponent
        guard let entry = manifest.files[name] else {
            throw BufferError(.manifest, "\(BufferManifest.url(for: url).path): lists no entry for \(name)")
        }
        guard digest == entry.sha256 else {
            throw BufferError(.manifest, "\(url.path): SHA-256 \(digest) does not match the manifest (\(entry.sha256)); the file or its manifest was changed after writing")
        }
        guard manifest.records == report.records, manifest.pairs == report.pairs else {
            throw BufferError(.manifest, "\(url.path): holds \(report.records) samples and \(report.pairs) pairs, the manifest says \(manifest.records) and \(manifest.pairs)")
        }
    }
}
