// A command judge's child process: spawned with posix_spawn in its own process group, with pipes
// on its stdin, stdout and stderr. Every write and read waits with poll() against one deadline and
// a stop check, so a judge that stops reading, stops answering, or closes its stdout but stays
// alive can never block Rondo. Ending a judge kills its whole group (kill(−pgid, SIGKILL)), so
// helpers it started die with it; JudgeGroups does the same for every live judge at exit.

import Foundation
#if canImport(Glibc)
import Glibc
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, p, n) }
private func systemKill(_ pid: pid_t, _ signal: Int32) -> Int32 { Glibc.kill(pid, signal) }
typealias SpawnFileActions = posix_spawn_file_actions_t
typealias SpawnAttributes = posix_spawnattr_t
private func newSpawnFileActions() -> SpawnFileActions { posix_spawn_file_actions_t() }
private func newSpawnAttributes() -> SpawnAttributes { posix_spawnattr_t() }
#elseif canImport(Darwin)
import Darwin
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, p, n) }
private func systemKill(_ pid: pid_t, _ signal: Int32) -> Int32 { Darwin.kill(pid, signal) }
typealias SpawnFileActions = posix_spawn_file_actions_t?
typealias SpawnAttributes = posix_spawnattr_t?
private func newSpawnFileActions() -> SpawnFileActions { nil }
private func newSpawnAttributes() -> SpawnAttributes { nil }
#endif

/// Whether `pid` (a child) has exited, without reaping it.
private func hasExited(_ pid: pid_t) -> Bool {
    var info = siginfo_t()
    guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return false }
    #if os(Linux)
    return info._sifields._sigchld.si_pid == pid
    #else
    return info.si_pid == pid
    #endif
}

/// The process groups of the running judges, killed when Rondo exits (atexit) or is told to exit
/// at once (a second SIGINT/SIGTERM).
public enum JudgeGroups {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var groups: Set<pid_t> = []
    nonisolated(unsafe) private static var atExitInstalled = false

    static func add(_ group: pid_t) {
        lock.withLock {
            if !atExitInstalled {
                atexit { JudgeGroups.killAll() }
                atExitInstalled = true
            }
            groups.insert(group)
        }
    }

    static func remove(_ group: pid_t) { _ = lock.withLock { groups.remove(group) } }

    /// The groups of the judges running now (for tests and diagnostics).
    public static var running: Set<pid_t> { lock.withLock { groups } }

    /// SIGKILLs every running judge's process group.
    public static func killAll() {
        for g in running { kill(-g, SIGKILL) }
    }
}

// Functions the C library has but the Swift module does not export (glibc declares them only under
// _GNU_SOURCE), looked up at run time.
private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
private typealias AddChdir = @convention(c) (UnsafeMutablePointer<SpawnFileActions>?, UnsafePointer<CChar>?) -> Int32
private let pipe2: Pipe2? = dlsym(dlopen(nil, RTLD_NOW), "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }
private let addChdir: AddChdir? = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addchdir_np")
    .map { unsafeBitCast($0, to: AddChdir.self) }
private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<SpawnFileActions>?, Int32) -> Int32
private let addCloseFrom: AddCloseFrom? = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np")
    .map { unsafeBitCast($0, to: AddCloseFrom.self) }

/// A pipe whose both ends close on exec (atomically where pipe2 exists), so concurrent spawns
/// elsewhere in Rondo cannot inherit a judge's pipe and hold it open.
private func cloexecPipe(_ fds: inout [Int32]) -> Bool {
    if let pipe2 { return pipe2(&fds, O_CLOEXEC) == 0 }
    guard pipe(&fds) == 0 else { return false }
    for f in fds { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
    return true
}

/// One judge process. Not thread-safe: one request at a time, as the protocol is.
final class JudgeProcess {
    enum Wait { case done, closed, timeout, interrupted }
    enum Read { case line(String), eof, timeout, interrupted }

    /// The judge's pid, which is also its process group id.
    let pid: pid_t
    private var stdinFD: Int32, stdoutFD: Int32, stderrFD: Int32
    private var pending: [UInt8] = []
    private var stderrTail: [UInt8] = []
    private var ended: String?

    /// Starts `argv` (argv[0] with a slash: a path, relative to `directory`; without: looked up on
    /// PATH) with `directory` as its working directory. Throws the errno of a failed spawn.
    init(argv: [String], directory: URL?) throws {
        var fds: [[Int32]] = [[-1, -1], [-1, -1], [-1, -1]]
        for i in 0..<3 where !cloexecPipe(&fds[i]) {
            let e = errno
            for f in fds.joined() where f >= 0 { close(f) }
            throw POSIXError(POSIXErrorCode(rawValue: e) ?? .EIO)
        }
        var actions = newSpawnFileActions()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0][0], 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1][1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[2][1], 2)
        // Nothing else of Rondo's leaks into the judge (the campaign lock, files being written: a
        // judge holding one open would keep the lock after Rondo dies, or make a script "busy").
        if let addCloseFrom { _ = addCloseFrom(&actions, 3) }
        if let directory {
            guard let addChdir, addChdir(&actions, directory.path) == 0 else {
                for f in fds.joined() { close(f) }
                throw POSIXError(.ENOSYS)
            }
        }

        // Its own process group; default signal handling (Rondo ignores SIGINT, SIGTERM and SIGPIPE,
        // and ignored signals would be inherited) and an empty signal mask.
        var attr = newSpawnAttributes()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attr, 0)
        var defaults = sigset_t(), empty = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT] { sigaddset(&defaults, s) }
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setsigmask(&attr, &empty)

        var program = argv[0]
        if program.contains("/") && !program.hasPrefix("/") {
            program = (directory ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
                .appendingPathComponent(program).standardizedFileURL.path
        }
        let cargs = argv.map { strdup($0) } + [nil]
        let cenv = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for a in cargs + cenv { free(a) } }
        var child: pid_t = 0
        let rc = program.contains("/")
            ? posix_spawn(&child, program, &actions, &attr, cargs, cenv)
            : posix_spawnp(&child, program, &actions, &attr, cargs, cenv)
        close(fds[0][0]); close(fds[1][1]); close(fds[2][1])
        guard rc == 0 else {
            close(fds[0][1]); close(fds[1][0]); close(fds[2][0])
            throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO)
        }
        pid = child
        stdinFD = fds[0][1]; stdoutFD = fds[1][0]; stderrFD = fds[2][0]
        for f in [stdinFD, stdoutFD, stderrFD] { _ = fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK) }
        JudgeGroups.add(pid)
    }

    deinit { kill() }

    /// The last 500 bytes the judge wrote to stderr.
    var stderrText: String {
        String(decoding: stderrTail, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes all of `bytes` to the judge's stdin.
    func write(_ bytes: [UInt8], until deadline: ContinuousClock.Instant, interrupted: () -> Bool) -> Wait {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { systemWrite(stdinFD, $0.baseAddress! + offset, bytes.count - offset) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno != EAGAIN { return .closed }  // EPIPE: the judge closed its stdin or exited
            switch wait(for: stdinFD, events: Int16(POLLOUT), until: deadline, interrupted: interrupted) {
            case .done: continue
            case let other: return other
            }
        }
        return .done
    }

    /// The next line on the judge's stdout (without the newline).
    func readLine(until deadline: ContinuousClock.Instant, interrupted: () -> Bool) -> Read {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let nl = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                return .line(line)
            }
            let n = chunk.withUnsafeMutableBytes { read(stdoutFD, $0.baseAddress!, $0.count) }
            if n > 0 { pending += chunk[..<n]; continue }
            if n == 0 { return .eof }
            if errno == EINTR { continue }
            if errno != EAGAIN { return .eof }
            switch wait(for: stdoutFD, events: Int16(POLLIN), until: deadline, interrupted: interrupted) {
            case .done: continue
            case .closed: return .eof
            case .timeout: return .timeout
            case .interrupted: return .interrupted
            }
        }
    }

    /// Polls `fd` (and stderr, which it drains) in slices of at most 100 ms until `fd` is ready,
    /// the deadline passes or `interrupted` says stop.
    private func wait(for fd: Int32, events: Int16, until deadline: ContinuousClock.Instant, interrupted: () -> Bool) -> Wait {
        while true {
            if interrupted() { return .interrupted }
            let left = deadline - .now
            if left <= .zero { return .timeout }
            let ms = min(100, Int(left.components.seconds) * 1000 + Int(left.components.attoseconds / 1_000_000_000_000_000) + 1)
            var p = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)]
            let rc = poll(&p, stderrFD >= 0 ? 2 : 1, Int32(ms))
            if rc < 0 && errno != EINTR { return .closed }
            if rc <= 0 { continue }
            if stderrFD >= 0 && p[1].revents != 0 { drainStderr() }
            if p[0].revents & Int16(POLLERR | POLLNVAL) != 0 { return .closed }
            if p[0].revents != 0 { return .done }  // ready, or hung up (the read or write reports which)
        }
    }

    private func drainStderr() {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while stderrFD >= 0 {
            let n = chunk.withUnsafeMutableBytes { read(stderrFD, $0.baseAddress!, $0.count) }
            if n > 0 {
                stderrTail = Array((stderrTail + chunk[..<n]).suffix(500))
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                if n == 0 || errno != EAGAIN { close(stderrFD); stderrFD = -1 }
                return
            }
        }
    }

    /// Closes the judge's stdin and gives it `grace` seconds to exit, then kills its group.
    /// Returns how it ended, as kill() does.
    @discardableResult
    func stop(grace: Double) -> String {
        if ended == nil && stdinFD >= 0 {
            close(stdinFD); stdinFD = -1
            let until = ContinuousClock.now + .milliseconds(Int(grace * 1000))
            while ContinuousClock.now < until && !hasExited(pid) { usleep(10_000) }
        }
        return kill()
    }

    /// Kills the judge's process group (at once) and reaps the judge. Returns how it ended, e.g.
    /// "exit status 3", "killed by signal 9" or "still running, killed". Idempotent.
    @discardableResult
    func kill() -> String {
        if let ended { return ended }
        let exited = hasExited(pid)
        // The leader is at worst a zombie here, so its pid (the group id) cannot have been reused.
        _ = systemKill(-pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        JudgeGroups.remove(pid)
        drainStderr()
        for f in [stdinFD, stdoutFD, stderrFD] where f >= 0 { close(f) }
        stdinFD = -1; stdoutFD = -1; stderrFD = -1
        let how: String
        if !exited { how = "still running, killed" }
        else if status & 0x7F == 0 { how = "exit status \((status >> 8) & 0xFF)" }
        else { how = "killed by signal \(status & 0x7F)" }
        ended = how
        return how
    }
}
