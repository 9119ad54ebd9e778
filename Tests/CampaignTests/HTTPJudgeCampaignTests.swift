// A campaign labelled by an HTTP judge (labeller type http) through the real `rondo` binary, against
// TestSupport's OpenAI-compatible JudgeServer on loopback: the buffers hold every exchange, the
// metrics the judge/* counts, replay is bit-identical with the server stopped, the API key is in
// no file and no log line; too many unscored samples refuse the round; SIGTERM while the judge
// hangs stops within seconds.

import Campaign
import Foundation
import Model
import Rollouts
import Testing
import TestSupport

private let key = "sk-live-campaign-7b3e91d0"

private func httpConfig(_ dir: URL, _ server: JudgeServer, rounds: Int, timeout: Int = 10, extra: String = "") throws -> URL {
    let template = dir.appendingPathComponent("judge.jinja")
    try "Judge this answer to {{ prompt }} {{ response }}".write(to: template, atomically: true, encoding: .utf8)
    return try smallConfig(dir, rounds: rounds, extra: """
        labeller:
          type: http
          url: \(server.url)
          model: test-judge
          api_key_env: RONDO_TEST_JUDGE_KEY
          prompt_template: judge.jinja
          parse: 'Score: ([0-9]+)'
          concurrency: 4
          timeout_s: \(timeout)
          retries: 2
        \(extra)
        """)
}

/// Every file under `dir` (zstd files decompressed) that contains `needle`.
private func filesContaining(_ needle: String, under dir: URL) throws -> [String] {
    var hits: [String] = []
    for case let u as URL in FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)! where !u.hasDirectoryPath {
        var data = try Data(contentsOf: u)
        if u.pathExtension == "zst" {
            let p = Process(), out = Pipe()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/zstd")
            p.arguments = ["-dc", u.path]
            p.standardOutput = out
            try p.run()
            data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
        }
        if data.range(of: Data(needle.utf8)) != nil { hits.append(u.path) }
    }
    return hits
}

@Suite(.serialized) struct HTTPJudgeCampaignTests {
    @Test func roundsKeepEveryExchangeAndReplayWithTheServerStopped() async throws {
        let server = JudgeServer()
        try await server.start()
        let dir = TemporaryDirectory("rondo-http")
        defer { withExtendedLifetime(dir) {} }
        let run = dir.url.appendingPathComponent("run")
        let config = try httpConfig(dir.url, server, rounds: 2)
        let started = try await offPool {
            try runRondo(["start", config.path, "--dir", run.path], environment: ["RONDO_TEST_JUDGE_KEY": key])
        }
        #expect(started.status == 0, "\(started.stderr)")
        #expect(server.authorizationHeaders.allSatisfy { $0 == "Bearer \(key)" })

        var judged = 0
        for r in 1...2 {
            var samples: [SampleRecord] = []
            try BufferReader(url: run.appendingPathComponent("rounds/\(String(format: "%06d", r))/rollouts.jsonl.zst")).read {
                if case .sample(let s) = $0 { samples.append(s) }
            }
            #expect(samples.count == 48)
            for s in samples {
                let j = try #require(s.label?.judge)
                #expect(j.prompt == "Judge this answer to \(s.prompt!) \(s.response!)")
                let expected = JudgeServer.score(of: j.prompt)
                #expect(j.reply == "Score: \(expected)" && j.verdict == "\(expected)" && j.retries == 0 && j.error == nil)
                #expect(s.label?.score == Float(expected) && s.label?.labeller == "http:test-judge" && j.latencyS >= 0)
                #expect(server.requests.contains(j.prompt))
            }
            judged += samples.count
            let metrics = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: run.appendingPathComponent("rounds/\(String(format: "%06d", r))/metrics.json")))
            #expect(metrics["judge/requests"]?.double == 48 && metrics["judge/parse_failures"]?.double == 0 && metrics["judge/retries"]?.double == 0)
            #expect((metrics["judge/latency_p95_s"]?.double ?? -1) >= (metrics["judge/latency_p50_s"]?.double ?? .nan))
        }
        // Round 0's and every round's held-out prompts are judged too (16 each).
        #expect(server.requests.count == judged + 3 * 16)

        await server.stop()
        for r in 1...2 {
            let replay = try await offPool { try runRondo(["replay", run.path, "--round", "\(r)"]) }
            #expect(replay.status == 0 && replay.stdout.contains("identical"), "round \(r): \(replay.stdout) \(replay.stderr)")
        }
        // `rondo serve --campaign RUN --round 1` serves that round's policy.
        let served = try await offPool { try ServedModel(["--campaign", run.path, "--round", "1", "--threads", "1"], logIn: dir.url) }
        let models = try runProgram(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c",
            "import json, sys, urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1] + '/models'))['data'][0]['id'])", served.baseURL])
        #expect(models.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "run/round-1", "\(models.stderr)")
        #expect(served.text.contains("rounds/000001/policy"), "\(served.text)")
        #expect(served.stop() != nil)
        #expect(try filesContaining(key, under: run) == [])
        #expect(!started.stderr.contains(key) && !started.stdout.contains(key))
    }

    @Test func tooManyUnscoredSamplesRefuseTheRound() async throws {
        let server = JudgeServer()
        try await server.start()
        server.fallback(.unparseable, after: 16)  // round 0's held-out prompts parse; nothing after
        let dir = TemporaryDirectory("rondo-http")
        defer { withExtendedLifetime(dir) {} }
        let run = dir.url.appendingPathComponent("run")
        let config = try httpConfig(dir.url, server, rounds: 1, extra: "  max_unscored: 0.5")
        let r = try await offPool { try runRondo(["start", config.path, "--dir", run.path], environment: ["RONDO_TEST_JUDGE_KEY": key]) }
        await server.stop()
        #expect(r.status != 0)
        #expect(r.stderr.contains("48 of 48 samples unscored") && r.stderr.contains("labeller.max_unscored is 0.5"), "\(r.stderr)")
        #expect(r.stderr.contains("does not match labeller.parse") && r.stderr.contains(server.url), "\(r.stderr)")
        #expect(try committed(run) == [0])
        #expect(!r.stderr.contains(key))
    }

    @Test func sigtermWhileTheJudgeHangsStopsWithinSeconds() async throws {
        let server = JudgeServer()
        try await server.start()
        server.fallback(.hang, after: 16)
        let dir = TemporaryDirectory("rondo-http")
        defer { withExtendedLifetime(dir) {} }
        let run = dir.url.appendingPathComponent("run")
        let config = try httpConfig(dir.url, server, rounds: 2, timeout: 600)
        let log = dir.url.appendingPathComponent("stderr.txt")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let p = Process()
        p.executableURL = rondoExecutable
        p.arguments = ["start", config.path, "--dir", run.path]
        p.environment = ProcessInfo.processInfo.environment.merging(["RONDO_TEST_JUDGE_KEY": key]) { $1 }
        p.standardError = try FileHandle(forWritingTo: log)
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        let took: Double = try await offPool {
            for _ in 0..<1200 where p.isRunning && server.requests.count <= 17 { usleep(50_000) }
            usleep(300_000)
            let t0 = Date()
            kill(p.processIdentifier, SIGTERM)
            for _ in 0..<200 where p.isRunning { usleep(50_000) }
            return Date().timeIntervalSince(t0)
        }
        await server.stop()
        #expect(!p.isRunning)
        if p.isRunning { return }
        p.waitUntilExit()
        let stderr = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(took < 3, "took \(took) s")
        #expect(p.terminationStatus == 0 && stderr.contains("stopped after round 0"), "\(stderr)")
        #expect(try committed(run) == [0])
        #expect(!stderr.contains(key))
    }
}
