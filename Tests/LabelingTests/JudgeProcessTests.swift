// The command judge's process handling against real child processes: a judge that closes its
// stdout but stays alive, one that trickles a reply that never ends, one that starts helpers (its
// process group dies with it), a stop request during a hanging call, the working directory, and
// scores outside float32 or not finite.

import Foundation
import Labeling
import Testing
import TestSupport

/// Writes a shell judge into `dir` and returns its command line.
func shellJudge(_ dir: URL, _ name: String, _ body: String) throws -> [String] {
    let url = dir.appendingPathComponent("\(name).sh")
    try ("#!/bin/sh\n" + body).write(to: url, atomically: true, encoding: .utf8)
    return ["/bin/sh", url.path]
}

/// Whether `pid` is a live process (a zombie counts as dead).
func isAlive(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(close, offsetBy: 2)] != "Z"
}

/// The pids a judge script wrote, one per line, into `file`.
func pids(_ file: URL) -> [pid_t] {
    ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { pid_t($0) }
}

@Suite struct JudgeProcessTests {
    @Test func closedStdoutButAliveDoesNotHang() throws {
        try withTemporaryDirectory { dir in
            let log = dir.appendingPathComponent("pids")
            let cmd = try judgeScript(dir, "mute", """
                open(\(String(reflecting: log.path)), "a").write(f"{os.getpid()}\\n")
                os.close(1)
                time.sleep(300)
                """)
            let judge = try CommandJudge(name: "mute", command: cmd, timeout: 60, maxRestarts: 1)
            defer { judge.stop() }
            let t0 = Date()
            expectError(LabelError.self, mentioning: [], { _ = try judge.score(request(["47"])) }) { e in
                #expect(e.description.contains("mute") && e.description.contains("closed its stdout"), "\(e)")
                #expect(e.description.contains("still running, killed"), "\(e)")
            }
            #expect(Date().timeIntervalSince(t0) < 5, "took \(Date().timeIntervalSince(t0)) s with timeout_s 60")
            #expect(judge.restarts == 1)
            let started = pids(log)
            #expect(started.count == 2)
            for p in started { #expect(!isAlive(p), "judge \(p) still alive") }
        }
    }

    @Test func deadlineCoversTheWholeReply() throws {
        try withTemporaryDirectory { dir in
            // Writes one byte of a reply every 0.1 s and never a newline.
            let cmd = try judgeScript(dir, "trickle", """
                for line in sys.stdin:
                    while True:
                        sys.stdout.write(" "); sys.stdout.flush(); time.sleep(0.1)
                """)
            let judge = try CommandJudge(name: "trickle", command: cmd, timeout: 0.8, maxRestarts: 0)
            defer { judge.stop() }
            let t0 = Date()
            expectError(LabelError.self, mentioning: [], { _ = try judge.score(request(["47"])) }) { e in
                #expect(e.description.contains("within 0.8 s"), "\(e)")
            }
            #expect(Date().timeIntervalSince(t0) < 5)
        }
    }

    /// A shell judge that first starts a helper (`sleep 300 &`, its pid written to the returned
    /// file), then runs `rest`.
    func judgeWithHelper(_ dir: URL, _ name: String, _ rest: String) throws -> ([String], URL) {
        let helper = dir.appendingPathComponent("\(name).helper")
        return (try shellJudge(dir, name, "sleep 300 &\necho $! > \(helper.path)\n" + rest), helper)
    }

    /// Expects every pid in `file` to be gone (waiting up to a second for init to reap it).
    func expectAllDead(_ file: URL, sourceLocation: SourceLocation = #_sourceLocation) {
        let started = pids(file)
        #expect(!started.isEmpty, sourceLocation: sourceLocation)
        for _ in 0..<50 where started.contains(where: isAlive) { usleep(20_000) }
        for p in started { #expect(!isAlive(p), "process \(p) outlived its judge", sourceLocation: sourceLocation) }
    }

    @Test func processGroupDiesWithTheJudge() throws {
        try withTemporaryDirectory { dir in
            // Never answers.
            let (cmd, helper) = try judgeWithHelper(dir, "group", "while read line; do sleep 300; done\n")
            let judge = try CommandJudge(name: "group", command: cmd, timeout: 0.5, maxRestarts: 0)
            defer { judge.stop() }
            #expect(throws: LabelError.self) { try judge.score(request(["47"])) }
            expectAllDead(helper)
            #expect(judge.pid == nil)
        }
    }

    @Test func stopEndsAJudgeAndItsHelpers() throws {
        try withTemporaryDirectory { dir in
            // Answers, then lingers after its stdin closes, ignoring SIGTERM.
            let (cmd, helper) = try judgeWithHelper(dir, "lingering", """
                while read line; do echo '{"scores": [1]}'; done
                trap '' TERM
                sleep 300

                """)
            let judge = try CommandJudge(name: "lingering", command: cmd, timeout: 10)
            #expect(try judge.score(request(["47"])) == [1])
            let leader = try #require(judge.pid)
            let t0 = Date()
            judge.stop()
            #expect(Date().timeIntervalSince(t0) < 5)
            #expect(!isAlive(leader))
            expectAllDead(helper)
            #expect(!JudgeGroups.running.contains(leader))
        }
    }

    @Test func stopRequestInterruptsAHangingCall() throws {
        try withTemporaryDirectory { dir in
            let cmd = try judgeScript(dir, "hang", "for line in sys.stdin:\n    time.sleep(300)\n")
            let flag = Flag()
            let judge = try CommandJudge(name: "hang", command: cmd, timeout: 60, maxRestarts: 3, interrupted: { flag.isSet })
            defer { judge.stop() }
            DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { flag.set() }
            let t0 = Date()
            expectError(LabelError.self, mentioning: [], { _ = try judge.score(request(["47"])) }) { e in
                #expect(e.interrupted, "\(e)")
                #expect(e.description.contains("hang"), "\(e)")
            }
            let took = Date().timeIntervalSince(t0)
            #expect(took >= 0.4 && took < 3, "took \(took) s")
            #expect(judge.restarts == 0 && judge.pid == nil)
        }
    }

    @Test func runsInItsWorkingDirectory() throws {
        try withTemporaryDirectory { dir in
            let home = dir.appendingPathComponent("judges")
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            // Reads a file next to it by a relative path; the program path itself is relative too.
            try "0.25\n".write(to: home.appendingPathComponent("weight.txt"), atomically: true, encoding: .utf8)
            let script = home.appendingPathComponent("relative.py")
            try """
                #!/usr/bin/env python3
                import json, sys
                w = float(open("weight.txt").read())
                for line in sys.stdin:
                    req = json.loads(line)
                    print(json.dumps({"scores": [w] * len(req["responses"])}), flush=True)

                """.write(to: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
            let judge = try CommandJudge(name: "rel", command: ["python3", "relative.py"], timeout: 20, workingDirectory: home)
            defer { judge.stop() }
            #expect(try judge.score(request(["a", "b"])) == [0.25, 0.25])
            let byPath = try CommandJudge(name: "rel2", command: ["./relative.py"], timeout: 20, workingDirectory: home)
            defer { byPath.stop() }
            #expect(try byPath.score(request(["a"])) == [0.25])
        }
    }

    @Test func scoresMustBeFiniteFloat32() throws {
        try withTemporaryDirectory { dir in
            var made = 0
            func judge(_ reply: String) throws -> CommandJudge {
                made += 1
                let cmd = try judgeScript(dir, "reply\(made)", "for line in sys.stdin:\n    print(\(String(reflecting: reply)), flush=True)\n")
                return try CommandJudge(name: "scorer", command: cmd, timeout: 20)
            }
            let ok = try judge(#"{"scores": [3.0e38, -1.5]}"#)
            defer { ok.stop() }
            #expect(try ok.score(request(["a", "b"])) == [3.0e38, -1.5])
            for (reply, words) in [(#"{"scores": [0.5, 1e300]}"#, "float32"), (#"{"scores": [0.5, -3.5e38]}"#, "float32"),
                                   (#"{"scores": [0.5, NaN]}"#, "NaN is not finite"), (#"{"scores": [Infinity, 0]}"#, "Infinity is not finite"),
                                   ("NaN", "NaN is not finite"), (#"{"scores": [0.5, "1"]}"#, "not a number")] {
                let j = try judge(reply)
                defer { j.stop() }
                expectError(LabelError.self, mentioning: [], { _ = try j.score(request(["a", "b"])) }) { e in
                    #expect(e.description.contains("scorer") && e.description.contains(words), "\(reply): \(e)")
                    if words == "float32" { #expect(e.response == 1 || e.response == 0, "\(reply): \(String(describing: e.response))") }
                }
            }
        }
    }
}

/// A thread-safe boolean for stop requests in tests.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
