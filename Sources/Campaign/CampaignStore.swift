// The campaign directory: its layout, the daemon lock, and the atomic round commit.
//
//   DIR/config.yaml              the resolved config (written once by `rondo start`)
//   DIR/rounds/NNNNNN/           one directory per committed round — it exists only when complete
//   DIR/rounds/.NNNNNN.tmp-PID/  a round being written (removed on the next start)
//   DIR/state.json               committed rounds and the latest checkpoint (derived from rounds/),
//                                plus what `start` and `resume` set: the pinned inputs and the
//                                rounds target of `resume --rounds` (kept when it is rebuilt)
//   DIR/metrics.jsonl            one JSON object per committed round, round 0 included (derived)
//   DIR/status.json              what the daemon is doing now (round, phase, pid), for `rondo status`
//   DIR/report.html              the campaign report, rewritten (atomically) after every commit
//   DIR/archive/                 rounds set aside by `rondo resume --from-round`, never deleted
//   DIR/lock                     flock()ed by the running daemon; holds its pid
//
// A round is committed by writing every file into the temporary directory (each fsynced),
// fsyncing it, renaming it to rounds/NNNNNN and fsyncing rounds/. state.json and metrics.jsonl
// are rebuilt from the committed rounds afterwards (atomically), so a crash between the rename
// and their update loses nothing: the next start rebuilds them.

import Foundation
import Model

public struct CampaignStore: Sendable {
    public let root: URL
    public var rounds: URL { root.appendingPathComponent("rounds") }
    public var archive: URL { root.appendingPathComponent("archive") }
    public var configURL: URL { root.appendingPathComponent("config.yaml") }
    public var stateURL: URL { root.appendingPathComponent("state.json") }
    public var metricsURL: URL { root.appendingPathComponent("metrics.jsonl") }
    public var statusURL: URL { root.appendingPathComponent("status.json") }
    public var lockURL: URL { root.appendingPathComponent("lock") }

    public init(root: URL) { self.root = root.standardizedFileURL }

    public static func roundName(_ n: Int) -> String { String(format: "%06d", n) }
    public func roundURL(_ n: Int) -> URL { rounds.appendingPathComponent(Self.roundName(n)) }

    /// Committed round numbers, ascending (names that are exactly six digits).
    public func committedRounds() throws -> [Int] {
        guard FileManager.default.fileExists(atPath: rounds.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: rounds.path)
            .filter { $0.count == 6 && $0.allSatisfy(\.isNumber) }
            .compactMap(Int.init).sorted()
    }

    /// Removes round directories a crash left half-written.
    public func removeIncompleteRounds() throws {
        guard FileManager.default.fileExists(atPath: rounds.path) else { return }
        for name in try FileManager.default.contentsOfDirectory(atPath: rounds.path) where name.hasPrefix(".") && name.contains(".tmp-") {
            try FileManager.default.removeItem(at: rounds.appendingPathComponent(name))
        }
    }

    /// A fresh temporary directory for round `n`.
    public func beginRound(_ n: Int) throws -> URL {
        try FileManager.default.createDirectory(at: rounds, withIntermediateDirectories: true)
        let tmp = rounds.appendingPathComponent(".\(Self.roundName(n)).tmp-\(getpid())")
        if FileManager.default.fileExists(atPath: tmp.path) { try FileManager.default.removeItem(at: tmp) }
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        return tmp
    }

    /// Makes round `n` visible: fsync every file in `tmp`, rename it into place, fsync rounds/.
    public func commitRound(_ n: Int, from tmp: URL) throws {
        try fsyncTree(tmp)
        let final = roundURL(n)
        guard !FileManager.default.fileExists(atPath: final.path) else {
            throw CampaignError("\(final.path): round \(n) is already committed; refusing to overwrite it")
        }
        guard rename(tmp.path, final.path) == 0 else {
            throw CampaignError("\(final.path): cannot commit round \(n) (\(String(cString: strerror(errno))))")
        }
        try fsyncPath(rounds.path, directory: true)
    }

    /// Moves rounds after `n` into archive/<timestamp>/ (never deleted).
    public func archiveRounds(after n: Int) throws -> [Int] {
        let later = try committedRounds().filter { $0 > n }
        guard !later.isEmpty else { return [] }
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let dest = archive.appendingPathComponent("after-\(Self.roundName(n))-\(stamp)")
        try FileManager.default.createDirectory(at: dest, withIntermediateDirectories: true)
        for r in later {
            guard rename(roundURL(r).path, dest.appendingPathComponent(Self.roundName(r)).path) == 0 else {
                throw CampaignError("cannot archive round \(r) (\(String(cString: strerror(errno))))")
            }
        }
        try fsyncPath(rounds.path, directory: true)
        try fsyncPath(dest.path, directory: true)
        return later
    }

    /// The keys of state.json that `start` and `resume` set; the rest is derived from rounds/.
    public static let persistentStateKeys = ["inputs", "rounds_target"]

    /// state.json as an object (empty when there is none yet).
    public func readState() throws -> [String: JSONValue] {
        guard FileManager.default.fileExists(atPath: stateURL.path) else { return [:] }
        do { return try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: stateURL)) } catch {
            throw CampaignError("\(stateURL.path): not a JSON object (\(error.localizedDescription)); restore it from a backup, or delete it to re-pin the inputs on the next resume")
        }
    }

    /// Changes state.json's persistent keys (atomically); take the campaign lock first.
    public func updateState(_ change: (inout [String: JSONValue]) -> Void) throws {
        var state = try readState()
        change(&state)
        try AtomicFile.write(try encodeJSON(state), to: stateURL)
    }

    /// The rounds target set by `rondo resume --rounds N` (nil: the config's `rounds`).
    public func roundsTarget() throws -> Int? { try readState()["rounds_target"]?.int }

    /// Rebuilds metrics.jsonl and state.json from the committed rounds' metrics.json files (keeping
    /// state.json's persistent keys).
    public func rebuildIndex() throws {
        var lines = ""
        let committed = try committedRounds()
        for r in committed {
            let m = roundURL(r).appendingPathComponent("metrics.json")
            let data = try Data(contentsOf: m)
            guard let text = String(data: data, encoding: .utf8) else { throw CampaignError("\(m.path): not UTF-8") }
            lines += text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: " ") + "\n"
        }
        try AtomicFile.write(Data(lines.utf8), to: metricsURL)
        var state = try readState().filter { Self.persistentStateKeys.contains($0.key) }
        state.merge([
            "committed_rounds": .number(Double(committed.count)),
            "last_round": committed.last.map { .number(Double($0)) } ?? .null,
            "rounds": .array(committed.map { .number(Double($0)) }),
            "checkpoint": committed.last.map { .string("rounds/\(Self.roundName($0))/policy") } ?? .null,
        ]) { _, new in new }
        try AtomicFile.write(try encodeJSON(state), to: stateURL)
    }

    /// Records what the daemon is doing (best effort; readers tolerate a stale file).
    public func writeStatus(round: Int, phase: String) { writeStatus(round: round, phase: phase, extra: [:]) }

    func writeStatus(round: Int, phase: String, extra: [String: JSONValue]) {
        var s: [String: JSONValue] = ["round": .number(Double(round)), "phase": .string(phase),
                                      "pid": .number(Double(getpid())), "time": .string(ISO8601DateFormatter().string(from: Date()))]
        s.merge(extra) { _, new in new }
        try? AtomicFile.write(try encodeJSON(s), to: statusURL)
    }
}

func encodeJSON(_ v: [String: JSONValue]) throws -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    return try e.encode(v)
}

/// fsyncs every regular file below `dir`, then each directory bottom-up.
func fsyncTree(_ dir: URL) throws {
    let fm = FileManager.default
    guard let items = fm.enumerator(at: dir, includingPropertiesForKeys: [.isDirectoryKey]) else { return }
    var dirs: [String] = [dir.path]
    for case let u as URL in items {
        if (try? u.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true { dirs.append(u.path) }
        else { try fsyncPath(u.path, directory: false) }
    }
    for d in dirs.reversed() { try fsyncPath(d, directory: true) }
}

func fsyncPath(_ path: String, directory: Bool) throws {
    let fd = open(path, directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY)
    guard fd >= 0 else { throw CampaignError("\(path): cannot open for fsync (\(String(cString: strerror(errno))))") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw CampaignError("\(path): fsync failed (\(String(cString: strerror(errno)))); is the disk full?") }
}

/// An exclusive lock on DIR/lock held for the daemon's lifetime (released by the kernel on exit,
/// even after kill -9).
public final class CampaignLock {
    private let fd: Int32
    public init(_ store: CampaignStore) throws {
        let path = store.lockURL.path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CampaignError("\(path): cannot open the lock file (\(String(cString: strerror(errno))))") }
        // `rondo status` probes the lock for an instant (`holder`); a few retries outlast a probe.
        var tries = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            tries += 1
            if tries < 5 { usleep(20_000); continue }
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw CampaignError("\(store.root.path): another rondo daemon (pid \(holder)) is running this campaign; stop it first (kill -TERM \(holder))")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { Foundation.write(fd, $0, strlen($0)) }
        fsync(fd)
    }
    deinit { flock(fd, LOCK_UN); close(fd) }

    /// The pid of the daemon holding `store`'s lock (-1 if it has not written it yet), or nil when no
    /// process holds it. Decided by the lock itself (the kernel releases it with the process, even
    /// after kill -9), never by whether some process has the recorded pid: pids are reused.
    public static func holder(_ store: CampaignStore) -> Int32? {
        let path = store.lockURL.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        let text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.flatMap { Int32($0) } ?? -1
    }
}
