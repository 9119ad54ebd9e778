// The command judge: an external program started once and kept running, speaking JSON lines
// (docs/judges.md). Request on its stdin, one line:
//   {"id": 7, "prompt": "…", "answer": "…" | null, "responses": ["…", …]}
// Reply on its stdout, one line:  {"id": 7, "scores": [1.0, 0.0, …]}   ("id" optional; if given it must match)
// A request that gets no reply within `timeout` seconds, or a judge that exits, is retried on a
// restarted judge, at most `maxRestarts` times over the judge's life; a malformed reply is an
// error at once, quoting the reply. Errors name the judge and include the tail of its stderr.

import Foundation
import Model

public final class CommandJudge: Labeller {
    public let id: String
    public let name: String
    let argv: [String]
    let timeout: Double
    let maxRestarts: Int
    let workingDirectory: URL?
    public private(set) var restarts = 0
    private var process: Process?
    private var input: FileHandle?
    private var lines: LineQueue?
    private var stderrTail: StderrTail?
    private var requestID = 0

    /// `command` is the program and its arguments (run directly, no shell).
    public init(name: String, command: [String], timeout: Double = 60, maxRestarts: Int = 3, workingDirectory: URL? = nil) throws {
        guard let first = command.first, !first.isEmpty else {
            throw LabelError("judge '\(name)': empty command; give the program and its arguments")
        }
        self.name = name
        self.id = "command:\(name)"
        self.argv = command
        self.timeout = timeout
        self.maxRestarts = maxRestarts
        self.workingDirectory = workingDirectory
        signal(SIGPIPE, SIG_IGN)  // a judge that dies mid-request must not take Rondo with it
    }

    deinit { stop() }

    /// Ends the judge: closes its stdin, then terminates it if it lingers.
    public func stop() {
        try? input?.close()
        if let p = process, p.isRunning {
            let deadline = Date().addingTimeInterval(1)
            while p.isRunning && Date() < deadline { usleep(10_000) }
            if p.isRunning { p.terminate() }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        process = nil; input = nil; lines = nil
    }

    private func start() throws {
        let p = Process()
        if argv[0].contains("/") {
            p.executableURL = URL(fileURLWithPath: argv[0], relativeTo: workingDirectory)
            p.arguments = Array(argv.dropFirst())
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = argv
        }
        if let workingDirectory { p.currentDirectoryURL = workingDirectory }
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = errPipe
        do { try p.run() } catch {
            throw LabelError("judge '\(name)': cannot start \(argv.joined(separator: " ")) (\(error.localizedDescription)); check the labeller.command path")
        }
        process = p
        input = inPipe.fileHandleForWriting
        lines = LineQueue(outPipe.fileHandleForReading)
        stderrTail = StderrTail(errPipe.fileHandleForReading)
    }

    private func restart(_ why: String) throws {
        guard restarts < maxRestarts else {
            throw LabelError("judge '\(name)': \(why); gave up after \(restarts) restarts (labeller.max_restarts = \(maxRestarts))\(stderrNote())")
        }
        restarts += 1
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        process = nil
        try start()
    }

    private func stderrNote() -> String {
        let t = stderrTail?.text ?? ""
        return t.isEmpty ? "" : "; its stderr ended with: \(t)"
    }

    public func score(_ r: LabelRequest) throws -> [Float] {
        if process == nil { try start() }
        requestID += 1
        var w = Data("{\"id\": \(requestID), \"prompt\": ".utf8)
        w += try JSONEncoder().encode(r.prompt)
        w += Data(", \"answer\": ".utf8)
        w += try r.answer.map { try JSONEncoder().encode($0) } ?? Data("null".utf8)
        w += Data(", \"responses\": ".utf8)
        w += try JSONEncoder().encode(r.responses)
        w += Data("}\n".utf8)
        while true {
            guard let input, let lines, let process else { try start(); continue }
            do { try input.write(contentsOf: w) } catch {
                try restart("exited before reading request \(requestID) (status \(exitStatus(process)))")
                continue
            }
            switch lines.next(timeout: timeout) {
            case .line(let reply):
                return try parse(reply, expected: r.responses.count)
            case .eof:
                try restart("exited without replying to request \(requestID) (status \(exitStatus(process)))")
            case .timeout:
                try restart("no reply to request \(requestID) within \(timeout) s (labeller.timeout_s)")
            }
        }
    }

    private func exitStatus(_ p: Process) -> String {
        p.waitUntilExit()
        return "\(p.terminationStatus)"
    }

    func parse(_ reply: String, expected: Int) throws -> [Float] {
        let quoted = reply.count > 300 ? String(reply.prefix(300)) + "…" : reply
        func bad(_ why: String) -> LabelError {
            LabelError("judge '\(name)': malformed reply to request \(requestID) (\(why)): \(quoted) — expected {\"scores\": [one number per response]} on one line (docs/judges.md)")
        }
        guard let v = try? JSONDecoder().decode(JSONValue.self, from: Data(reply.utf8)), v.object != nil else { throw bad("not a JSON object") }
        if let id = v["id"], id != .null, id.int != requestID { throw bad("id \(id) does not match request \(requestID)") }
        guard let arr = v["scores"]?.array else { throw bad("no \"scores\" array") }
        guard arr.count == expected else { throw bad("\(arr.count) scores for \(expected) responses") }
        return try arr.map { s in
            guard let d = s.double, d.isFinite else { throw bad("score \(s) is not a finite number") }
            return Float(d)
        }
    }
}

/// Lines from a pipe, read on a background thread, with a timed wait.
final class LineQueue: @unchecked Sendable {
    enum Next { case line(String), eof, timeout }
    private var lines: [String] = []
    private var closed = false
    private let lock = NSLock()
    private let available = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread { [self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending += chunk
                while let nl = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
                    pending = Data(pending[(nl + 1)...])
                    lock.withLock { lines.append(line) }
                    available.signal()
                }
            }
            lock.withLock { closed = true }
            available.signal()
        }.start()
    }

    func next(timeout: Double) -> Next {
        let deadline = DispatchTime.now() + timeout
        while true {
            if available.wait(timeout: deadline) == .timedOut { return .timeout }
            let r: Next? = lock.withLock {
                if !lines.isEmpty { return .line(lines.removeFirst()) }
                if closed { return .eof }
                return nil
            }
            if let r {
                if case .eof = r { available.signal() }  // stay at EOF for later calls
                return r
            }
        }
    }
}

/// Keeps the last 500 bytes a judge wrote to stderr, for error messages.
final class StderrTail: @unchecked Sendable {
    private var tail = Data()
    private let lock = NSLock()
    init(_ handle: FileHandle) {
        Thread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.withLock { tail = Data((tail + chunk).suffix(500)) }
            }
        }.start()
    }
    var text: String {
        lock.withLock { String(decoding: tail, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}
