// A stop signal while a judge hangs: the daemon abandons the round within a second or two, exits 0
// with every committed round intact, and leaves no judge behind.

import Campaign
import Foundation
import Model
import Testing
import TestSupport

/// Whether `pid` is a live process (a zombie counts as dead).
private func alive(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(close, offsetBy: 2)] != "Z"
}

@Suite struct JudgeSignalTests {
    @Test(arguments: [SIGTERM, SIGINT])
    func signalDuringAHangingJudgeStopsTheRoundAndExitsZero(signal: Int32) throws {
        try withTemporaryDirectory { dir in
            // Held-out requests (one response) are answered; a round's requests (4 responses) hang.
            let config = try judgeCampaign(dir, rounds: 3, judge: """
                open("pids", "a").write(f"{os.getpid()}\\n")
                if len(req["responses"]) > 1:
                    time.sleep(600)
                print(json.dumps({"scores": [0.0] * len(req["responses"])}), flush=True)
                """, timeout: 60)
            let run = dir.appendingPathComponent("run")
            let log = dir.appendingPathComponent("stderr.txt")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let p = Process()
            p.executableURL = rondoExecutable
            p.arguments = ["start", config.path, "--dir", run.path]
            p.standardError = try FileHandle(forWritingTo: log)
            try p.run()
            defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
            func phase() -> (Int?, String?) {
                let s = try? JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: run.appendingPathComponent("status.json")))
                return (s?["round"]?.int, s?["phase"]?.string)
            }
            for _ in 0..<1200 where p.isRunning && !(phase().0 == 1 && phase().1 == "label") { usleep(50_000) }
            #expect(phase().0 == 1 && phase().1 == "label", "never reached round 1's labelling")
            usleep(500_000)  // the judge is asleep on the request now
            let t0 = Date()
            kill(p.processIdentifier, signal)
            for _ in 0..<200 where p.isRunning { usleep(50_000) }
            let took = Date().timeIntervalSince(t0)
            #expect(!p.isRunning, "still running 10 s after the signal")
            if p.isRunning { return }
            p.waitUntilExit()
            let stderr = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            #expect(took < 3, "took \(took) s")
            #expect(p.terminationReason == .exit && p.terminationStatus == 0, "status \(p.terminationStatus): \(stderr)")
            #expect(stderr.contains("stopped after round 0"), "\(stderr)")
            #expect(try committed(run) == [0])
            let judges = ((try? String(contentsOf: config.deletingLastPathComponent().appendingPathComponent("pids"), encoding: .utf8)) ?? "")
                .split(separator: "\n").compactMap { pid_t($0) }
            #expect(!judges.isEmpty)
            for j in Set(judges) { #expect(!alive(j), "judge \(j) outlived the daemon") }
        }
    }
}
