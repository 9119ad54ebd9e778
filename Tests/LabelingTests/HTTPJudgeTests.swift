// The HTTP judge against a real OpenAI-compatible server on loopback (TestSupport's JudgeServer):
// scores and exchanges, and each fault's documented outcome — slow replies beyond timeout_s, 429
// with Retry-After, 500s, garbage bodies, a dropped connection, unparseable verdicts, an
// unreachable judge, a stop request — with the judge/* metrics, and the API key in no error; the
// pairwise mode's verdicts (A, B, tie, normalised) and its parse failures.

import Foundation
import Labeling
import Testing
import TestSupport

private let key = "sk-test-4f1d9a7c2e"

private func judge(_ server: JudgeServer, url: String? = nil, _ edit: (inout HTTPJudgeConfig) -> Void = { _ in },
                   stop: @escaping @Sendable () -> Bool = { false }) throws -> HTTPJudge {
    var c = HTTPJudgeConfig(url: url ?? server.url)
    c.apiKeyEnv = "RONDO_TEST_JUDGE_KEY"
    c.timeoutS = 5
    c.concurrency = 2
    edit(&c)
    setenv("RONDO_TEST_JUDGE_KEY", key, 1)
    return try HTTPJudge(config: c, interrupted: stop)
}

private func metric(_ m: [(String, Double)], _ k: String) -> Double { m.first { $0.0 == k }?.1 ?? .nan }

private let responses = ["4", "seventeen", "the answer is 47"]

@Suite(.serialized) struct HTTPJudgeTests {
    @Test func scoresEveryResponseAndKeepsTheExchange() async throws {
        let server = JudgeServer()
        try await server.start()
        defer { Task { await server.stop() } }
        let j = try judge(server)
        let calls = try await offPool { try j.judge([request(responses)]) }[0]
        #expect(calls.count == 3)
        for (c, resp) in zip(calls, responses) {
            #expect(c.prompt.contains("Response: \(resp)"), "\(c.prompt)")
            #expect(c.reply == "Score: \(JudgeServer.score(of: c.prompt))")
            #expect(c.score == Float(JudgeServer.score(of: c.prompt)) && c.verdict == "\(JudgeServer.score(of: c.prompt))")
            #expect(c.retries == 0 && c.error == nil && c.latencyS >= 0)
        }
        #expect(Set(server.requests) == Set(calls.map(\.prompt)))
        #expect(server.authorizationHeaders.allSatisfy { $0 == "Bearer \(key)" })
        let m = j.takeMetrics()
        #expect(metric(m, "judge/requests") == 3 && metric(m, "judge/retries") == 0 && metric(m, "judge/parse_failures") == 0)
        #expect(metric(m, "judge/latency_p50_s") <= metric(m, "judge/latency_p95_s"))
    }

    @Test func pairwiseVerdictsAreNormalisedAndFailuresCounted() async throws {
        let server = JudgeServer()
        try await server.start()
        defer { Task { await server.stop() } }
        server.script([.text("Verdict: a"), .text("verdict: TIE"), .text("Verdict: C"), .unparseable, .text("Verdict:B")])
        let j = try judge(server) { $0.mode = .pairwise; $0.parse = #"(?i)verdict:\s*(\w+)"#; $0.concurrency = 1 }
        let asks = (0..<5).map { PairwiseAsk(prompt: "2+2", answer: $0 == 0 ? "4" : nil, responseA: "a\($0)", responseB: "b\($0)") }
        let calls = try await offPool { try j.compare(asks) }
        #expect(calls.map(\.verdict) == ["A", "tie", nil, nil, "B"])
        #expect(calls.allSatisfy { $0.score == nil })
        #expect(calls[0].error == nil && calls[1].error == nil && calls[4].error == nil)
        #expect(calls[2].error?.contains("'C' is not A, B or tie") == true, "\(calls[2])")
        #expect(calls[3].error?.contains("does not match labeller.parse") == true && calls[3].reply == "I would rather not say.")
        // The built-in pairwise template: both responses in order, the reference answer when there is one.
        #expect(calls[0].prompt.contains("Response A: a0") && calls[0].prompt.contains("Response B: b0") && calls[0].prompt.contains("Reference answer: 4"))
        #expect(!calls[1].prompt.contains("Reference answer") && calls[1].prompt.contains("Verdict: A, Verdict: B or Verdict: tie"))
        let m = j.takeMetrics()
        #expect(metric(m, "judge/requests") == 5 && metric(m, "judge/parse_failures") == 2)
        #expect(throws: LabelError.self) { try j.judge([request(["4"])]) }
    }

    @Test func retryAfterOn429IsHonoured() async throws {
        let server = JudgeServer()
        try await server.start()
        defer { Task { await server.stop() } }
        server.script([.status(429, retryAfter: "1")])
        let j = try judge(server) { $0.concurrency = 1 }
        let t0 = Date()
        let calls = try await offPool { try j.judge([request(["4"])]) }[0]
        #expect(Date().timeIntervalSince(t0) >= 1, "did not wait for Retry-After: 1")
        #expect(calls[0].score != nil && calls[0].retries == 1 && calls[0].latencyS >= 1)
        #expect(metric(j.takeMetrics(), "judge/retries") == 1)
    }

    @Test func serverErrorsAreRetriedThenFailTheRequestWithTheURL() async throws {
        let server = JudgeServer()
        try await server.start()
        defer { Task { await server.stop() } }
        server.script([.status(500, retryAfter: nil), .status(503, retryAfter: nil)])
        let j = try judge(server) { $0.concurrency = 1; $0.retries = 2 }
        let calls = try await offPool { try j.judge([request(["4"])]) }[0]
        #expect(calls[0].score != nil && calls[0].retries == 2)

        server.script([.status(500, retryAfter: nil), .status(500, retryAfter: nil)])
        let k = try judge(server) { $0.concurrency = 1; $0.retries = 1 }
        await expectJudgeError(mentioning: [server.url, "HTTP 500", "after 1 retries"]) { try k.judge([request(["4"])]) }
    }

    @Test func aSlowReplyBeyondTheTimeoutIsRetriedThenFails() async throws {
        let server = JudgeServer()
        try await server.start()
        defer { Task { await server.stop() } }
        server.fallback(.slow(3))
        let j = try judge(server) { $0.timeoutS = 0.5; $0.retries = 1; $0.concurrency = 1 }
        let t0 = Date()
        await expectJudgeError(mentioning: [server.url, "no reply within 0.5 s", "labeller.timeout_s"]) { try j.judge([request(["4"])]) }
        #expect(Date().timeIntervalSince(t0) < 2.9, "waited for the slow reply instead of timing out")
        #expect(server.requests.count == 2)
    }

    @Test func garbageBodiesAndUnparseableVerdictsLeaveSamplesUnscored() async throws {
        let server = JudgeServer()
        try await server.start()
        defer { Task { await server.stop() } }
        server.script([.garbage, .unparseable])
        let j = try judge(server) { $0.concurrency = 1 }
        let calls = try await offPool { try j.judge([request(responses)]) }[0]
        #expect(calls[0].score == nil && calls[0].reply == "<html>upstream error</html>" && calls[0].error?.contains("not a chat completion") == true)
        #expect(calls[1].score == nil && calls[1].reply == "I would rather not say." && calls[1].error?.contains("labeller.parse") == true)
        #expect(calls[2].score != nil && calls.allSatisfy { $0.retries == 0 })
        let m = j.takeMetrics()
        #expect(metric(m, "judge/parse_failures") == 2 && metric(m, "judge/requests") == 3)
    }

    @Test func aDroppedConnectionIsRetriedThenFails() async throws {
        let listener = try droppingListener()
        defer { listener.close() }
        let server = JudgeServer()
        let url = "http://127.0.0.1:\(listener.port)/v1/chat/completions"
        let j = try judge(server, url: url) { $0.retries = 2; $0.concurrency = 1 }
        await expectJudgeError(mentioning: [url, "after 2 retries", "last error"]) { try j.judge([request(["4"])]) }
    }

    @Test func aStopRequestEndsTheWaitWithinASecond() async throws {
        let server = JudgeServer()
        try await server.start()
        defer { Task { await server.stop() } }
        server.fallback(.hang)
        let flag = Flag()
        let j = try judge(server, { $0.timeoutS = 600 }, stop: { flag.isSet })
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { flag.set() }
        let t0 = Date()
        do {
            _ = try await offPool { try j.judge([request(responses)]) }
            Issue.record("no error after a stop request")
        } catch let e as LabelError {
            #expect(e.interrupted, "\(e)")
        }
        #expect(Date().timeIntervalSince(t0) < 1.5)
    }

    @Test func badSettingsAreNamed() throws {
        var c = HTTPJudgeConfig(url: "ftp://x")
        func check(_ key: String, _ edit: (inout HTTPJudgeConfig) -> Void) {
            var d = HTTPJudgeConfig(url: "http://127.0.0.1:1/v1/chat/completions")
            edit(&d)
            expectError(LabelError.self, mentioning: [key]) { try d.validate { k, why in LabelError("\(k) \(why)") } }
        }
        c.url = "ftp://x"
        expectError(LabelError.self, mentioning: ["url", "ftp://x"]) { try c.validate { k, why in LabelError("\(k) \(why)") } }
        check("parse") { $0.parse = "Score: [0-9]+" }
        check("parse") { $0.parse = "(" }
        check("concurrency") { $0.concurrency = 0 }
        check("timeout_s") { $0.timeoutS = .nan }
        check("max_unscored") { $0.maxUnscored = 1.5 }
        var pairwise = HTTPJudgeConfig(url: "http://127.0.0.1:1/v1/chat/completions")
        pairwise.mode = .pairwise  // valid; the campaign config checks what it goes with (pairs.strategy, DPO)
        try pairwise.validate { k, why in LabelError("\(k) \(why)") }
        check("api_key_env") { $0.apiKeyEnv = "KEY=sk-123" }
        var missing = HTTPJudgeConfig(url: "http://127.0.0.1:1/v1/chat/completions")
        missing.apiKeyEnv = "RONDO_TEST_UNSET_VARIABLE"
        let j = try HTTPJudge(config: missing)  // no network, no key needed until the first request
        expectError(LabelError.self, mentioning: ["RONDO_TEST_UNSET_VARIABLE", "not set"]) { _ = try j.judge([request(["4"])]) }
    }
}

/// Expects a LabelError naming every fragment and not containing the API key.
func expectJudgeError(mentioning fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: @escaping @Sendable () throws -> Any) async {
    do {
        _ = try await offPool { _ = try body(); return 0 }
        Issue.record("expected a LabelError mentioning \(fragments)", sourceLocation: sourceLocation)
    } catch let e as LabelError {
        for f in fragments { #expect(e.description.contains(f), "'\(f)' missing from: \(e)", sourceLocation: sourceLocation) }
        #expect(!e.description.contains(key), sourceLocation: sourceLocation)
        #expect(!e.interrupted, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected LabelError, got \(error)", sourceLocation: sourceLocation)
    }
}
