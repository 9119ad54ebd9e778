// The command judge: an external program started once and kept running, speaking JSON lines
// (docs/judges.md). Request on its stdin, one line:
//   {"id": 7, "prompt": "…", "answer": "…" | null, "responses": ["…", …]}
// Reply on its stdout, one line:  {"id": 7, "scores": [1.0, 0.0, …]}   ("id" optional; if given it must match)
// The whole exchange (writing the request, reading the reply) has one deadline, `timeout` seconds;
// a judge that misses it, exits or closes its stdout is killed with its process group and the
// request retried on a restarted judge, at most `maxRestarts` times over the judge's life. A
// malformed reply, or a score that is not a finite float32, is an error at once, quoting the reply.
// A stop request (`interrupted`) ends the wait within 100 ms. Errors name the judge and include
// the tail of its stderr. JudgeProcess runs the child.

import Foundation
import RondoSupport

public final class CommandJudge: Labeller {
    public let id: String
    public let name: String
    let argv: [String]
    let timeout: Double
    let maxRestarts: Int
    let workingDirectory: URL?
    let interrupted: @Sendable () -> Bool
    public private(set) var restarts = 0
    private var child: JudgeProcess?
    private var lastStderr = ""
    private var requestID = 0

    /// `command` is the program and its arguments (run directly, no shell); a relative program path
    /// and the judge's own relative paths resolve against `workingDirectory` (nil: Rondo's).
    /// `interrupted` is polled while waiting for the judge: true ends the wait (a stop request).
    public init(name: String, command: [String], timeout: Double = 60, maxRestarts: Int = 3, workingDirectory: URL? = nil,
                interrupted: @escaping @Sendable () -> Bool = { false }) throws {
        guard let first = command.first, !first.isEmpty else {
            throw LabelError("judge '\(name)': empty command; give the program and its arguments")
        }
        self.name = name
        self.id = "command:\(name)"
        self.argv = command
        self.timeout = timeout
        self.maxRestarts = maxRestarts
        self.workingDirectory = workingDirectory
        self.interrupted = interrupted
        signal(SIGPIPE, SIG_IGN)  // a judge that dies mid-request must not take Rondo with it
    }

    deinit { stop() }

    /// The judge's process id while it runs (its process group id too).
    public var pid: pid_t? { child?.pid }

    /// Ends the judge: closes its stdin, gives it a second to exit, then kills its process group.
    public func stop() {
        if let child { child.stop(grace: 1); lastStderr = child.stderrText }
        child = nil
    }

    private func start() throws -> JudgeProcess {
        do {
            let c = try JudgeProcess(argv: argv, directory: workingDirectory)
            child = c
            return c
        } catch {
            let dir = workingDirectory.map { " in \($0.path)" } ?? ""
            throw LabelError("judge '\(name)': cannot start \(argv.joined(separator: " "))\(dir) (\(error.localizedDescription)); check the labeller.command path")
        }
    }

    /// Kills the current judge (how it ended goes into `why`) and starts another, or gives up.
    private func restart(_ why: (String) -> String) throws {
        let how = child?.kill() ?? "not running"
        lastStderr = child?.stderrText ?? lastStderr
        child = nil
        guard restarts < maxRestarts else {
            throw LabelError("judge '\(name)': \(why(how)); gave up after \(restarts) restarts (labeller.max_restarts = \(maxRestarts))\(stderrNote())")
        }
        restarts += 1
    }

    private func stderrNote() -> String {
        let t = child?.stderrText ?? lastStderr
        return t.isEmpty ? "" : "; its stderr ended with: \(t)"
    }

    private func stopped() -> LabelError {
        child?.kill()
        child = nil
        return LabelError("judge '\(name)': request \(requestID) abandoned (stop requested); the round is not committed", interrupted: true)
    }

    public func score(_ r: LabelRequest) throws -> [Float] {
        requestID += 1
        var w = Data("{\"id\": \(requestID), \"prompt\": ".utf8)
        w += try JSONEncoder().encode(r.prompt)
        w += Data(", \"answer\": ".utf8)
        w += try r.answer.map { try JSONEncoder().encode($0) } ?? Data("null".utf8)
        w += Data(", \"responses\": ".utf8)
        w += try JSONEncoder().encode(r.responses)
        w += Data("}\n".utf8)
        let bytes = [UInt8](w), n = requestID
        while true {
            let c = try child ?? start()
            let deadline = ContinuousClock.now + .milliseconds(Int((min(timeout, 1e9) * 1000).rounded(.up)))
            switch c.write(bytes, until: deadline, interrupted: interrupted) {
            case .done: break
            case .closed: try restart { "exited before reading request \(n) (\($0))" }; continue
            case .timeout: try restart { _ in "did not read request \(n) within \(self.timeout) s (labeller.timeout_s)" }; continue
            case .interrupted: throw stopped()
            }
            switch c.readLine(until: deadline, interrupted: interrupted) {
            case .line(let reply): return try parse(reply, expected: r.responses.count)
            case .eof: try restart { "closed its stdout without replying to request \(n) (\($0))" }
            case .timeout: try restart { _ in "no reply to request \(n) within \(self.timeout) s (labeller.timeout_s)" }
            case .interrupted: throw stopped()
            }
        }
    }

    func parse(_ reply: String, expected: Int) throws -> [Float] {
        let quoted = reply.count > 300 ? String(reply.prefix(300)) + "…" : reply
        func bad(_ why: String, response: Int? = nil) -> LabelError {
            LabelError("judge '\(name)': malformed reply to request \(requestID) (\(why)): \(quoted) — expected {\"scores\": [one finite number per response]} on one line (docs/judges.md)",
                       response: response)
        }
        guard let v = try? JSONDecoder().decode(JSONValue.self, from: Data(reply.utf8)), v.object != nil else {
            if let token = Self.nonFiniteToken(reply) {
                throw bad("score \(token) is not finite; NaN and Infinity are not JSON numbers, and scores must be finite")
            }
            throw bad("not a JSON object")
        }
        if let id = v["id"], id != .null, id.int != requestID { throw bad("id \(id) does not match request \(requestID)") }
        guard let arr = v["scores"]?.array else { throw bad("no \"scores\" array") }
        guard arr.count == expected else { throw bad("\(arr.count) scores for \(expected) responses") }
        return try arr.enumerated().map { k, s in
            guard let d = s.double else { throw bad("score \(k) is \(s), not a number", response: k) }
            guard d.isFinite, abs(d) <= maxScoreMagnitude else {
                throw bad("score \(k) is \(d), not finite in float32 (|score| ≤ 3.4e38)", response: k)
            }
            return Float(d)
        }
    }

    /// A bare NaN / Infinity / inf token outside the reply's strings (what Python's json.dumps
    /// writes for float('nan') and float('inf')), if any.
    static func nonFiniteToken(_ reply: String) -> String? {
        var inString = false, escaped = false, word = ""
        for ch in reply + " " {
            if inString {
                if escaped { escaped = false } else if ch == "\\" { escaped = true } else if ch == "\"" { inString = false }
                continue
            }
            if ch.isLetter { word.append(ch); continue }
            if ["nan", "infinity", "inf"].contains(word.lowercased()) { return word }
            word = ""
            if ch == "\"" { inString = true }
        }
        return nil
    }
}
