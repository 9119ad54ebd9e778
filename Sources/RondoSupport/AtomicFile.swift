// Crash-safe file replacement: write a temporary file next to the target, fsync it, rename it
// over the target, then fsync the directory so the rename itself is durable. A reader sees
// either the old file or the complete new one, never a partial write.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file could not be written or read: the path, what failed, the system's reason and what to do.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum AtomicFile {
    /// Streams bytes into the temporary file of an `AtomicFile.write(to:)` call.
    public struct Writer {
        fileprivate let fd: Int32
        fileprivate let path: String
        /// Bytes written so far.
        public fileprivate(set) var bytesWritten: Int = 0

        /// Appends `bytes`, retrying short writes and EINTR.
        public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard var p = bytes.baseAddress else { return }
            var left = bytes.count
            while left > 0 {
                let n = systemWrite(fd, p, min(left, 1 << 30))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw AtomicFile.failure(path, "write failed", errno)
                }
                if n == 0 { throw FileError("\(path): write made no progress; check free disk space") }
                p += n
                left -= n
                bytesWritten += n
            }
        }

        public mutating func write(_ data: Data) throws {
            try data.withUnsafeBytes { try write($0) }
        }
    }

    /// Atomically replaces (or creates) the file at `url` with `data`.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { w in try w.write(data) }
    }

    /// Atomically replaces (or creates) the file at `url` with whatever `body` writes.
    /// If `body` throws, the target is left untouched and the temporary file is removed.
    public static func write(to url: URL, _ body: (inout Writer) throws -> Void) throws {
        let target = url.standardizedFileURL
        let path = target.path
        let dir = target.deletingLastPathComponent().path
        let tmp = dir + "/." + target.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure(path, "cannot create temporary file \(tmp)", errno) }
        var closed = false
        var renamed = false
        defer {
            if !closed { _ = close(fd) }
            if !renamed { _ = unlink(tmp) }
        }
        var w = Writer(fd: fd, path: path)
        try body(&w)
        guard fsync(fd) == 0 else { throw failure(path, "fsync of \(tmp) failed", errno) }
        closed = true
        guard close(fd) == 0 else { throw failure(path, "close of \(tmp) failed", errno) }
        guard rename(tmp, path) == 0 else { throw failure(path, "cannot rename \(tmp) over it", errno) }
        renamed = true
        try syncDirectory(dir, for: path)
    }

    /// fsyncs a directory so a rename or create inside it survives a crash.
    public static func syncDirectory(_ dir: String, for path: String) throws {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw failure(path, "cannot open directory \(dir) to fsync it", errno) }
        defer { _ = close(dfd) }
        // Some filesystems refuse fsync on directories (EINVAL); the data is already durable there.
        if fsync(dfd) != 0 && errno != EINVAL {
            throw failure(path, "fsync of directory \(dir) failed", errno)
        }
    }

    fileprivate static func failure(_ path: String, _ what: String, _ code: Int32) -> FileError {
        FileError("\(path): \(what) (\(String(cString: strerror(code)))); check that the directory exists, is writable and the disk is not full")
    }
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Darwin)
    return Darwin.write(fd, p, n)
    #elseif canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Musl.write(fd, p, n)
    #endif
}
