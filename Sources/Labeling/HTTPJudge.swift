// The HTTP judge: an OpenAI-compatible chat-completions endpoint scores each response (pointwise),
// or says which of two responses is better (pairwise, PairwiseJudge.swift).
// For every response the judge prompt is rendered from a Jinja template (Templates), sent as one
// user message, and the reply's text is matched against the `parse` regex; its first group is the
// score. Each exchange (rendered prompt, raw reply, verdict, latency, retries) is returned as a
// JudgeCall for the round's buffer, so labels can be audited and rounds replayed offline.
//
// Outcomes (docs/judges.md):
//   2xx with a usable verdict            → scored
//   2xx with a garbage body or no match  → unscored, counted in judge/parse_failures
//   connection error, timeout, 429, 5xx  → retried (Retry-After, else exponential backoff with
//                                          jitter) up to `retries` times, then the round fails
//                                          with the URL and the last error
//   other 4xx                            → the round fails with the status and the body's start
//   stop request                         → requests in flight are cancelled within 100 ms
// The API key is read from the environment at the first request and only ever put in the
// Authorization header; no error, record or log line contains it. HTTPExchange sends one attempt.

import AsyncHTTPClient
import Foundation
import NIOCore
import Templates

/// One judge exchange about one response, as the round's buffer keeps it.
public struct JudgeCall: Sendable, Equatable {
    /// The rendered judge prompt (the user message).
    public var prompt: String
    /// The reply's text (the message content), or the raw body when it was not a chat completion.
    public var reply: String?
    /// The parsed verdict (the regex's first group), nil when unparseable.
    public var verdict: String?
    /// The score, nil when the response stays unscored.
    public var score: Float?
    /// Seconds from the first attempt to the final reply.
    public var latencyS: Double
    public var retries: Int
    /// Why the response is unscored, when it is.
    public var error: String?
}

public final class HTTPJudge: Labeller {
    public static let defaultTemplate = """
        Rate how well the response answers the prompt, from 0 (useless) to 10 (perfect).

        Prompt: {{ prompt }}
        {% if answer %}Reference answer: {{ answer }}
        {% endif %}Response: {{ response }}

        Reply with one line: Score: N
        """
    public static let defaultParse = #"Score:\s*(-?[0-9]+(?:\.[0-9]+)?)"#

    public let id: String
    public let config: HTTPJudgeConfig
    let template: ChatTemplate
    let regex: NSRegularExpression
    let interrupted: @Sendable () -> Bool
    private var client: HTTPClient?
    private let metrics = JudgeMetrics()

    /// Reads and compiles the template; opens no connection (replay builds a judge it never calls).
    public init(config: HTTPJudgeConfig, name: String? = nil, interrupted: @escaping @Sendable () -> Bool = { false }) throws {
        self.config = config
        self.id = "http:\(name ?? config.model)"
        self.interrupted = interrupted
        let pairwise = config.mode == .pairwise
        var source = pairwise ? Self.defaultPairwiseTemplate : Self.defaultTemplate
        if let path = config.promptTemplate {
            do { source = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw LabelError("labeller.prompt_template: cannot read \(path) (\(error.localizedDescription)); give a Jinja file")
            }
        }
        do { template = try ChatTemplate(source, name: config.promptTemplate ?? "built-in judge template") } catch {
            throw LabelError("labeller.prompt_template \(config.promptTemplate ?? "(built-in)"): \(error)")
        }
        do { regex = try NSRegularExpression(pattern: config.parse ?? (pairwise ? Self.defaultPairwiseParse : Self.defaultParse)) } catch {
            throw LabelError("labeller.parse: not a valid regular expression: \(error.localizedDescription)")
        }
    }

    deinit { try? client?.syncShutdown() }

    /// The judge/* metrics of the exchanges since the last call, and a fresh count.
    public func takeMetrics() -> [(String, Double)] { metrics.take() }

    /// Labeller: scores, failing when any response stays unscored (the campaign uses `judge`).
    public func score(_ request: LabelRequest) throws -> [Float] {
        let calls = try judge([request])[0]
        return try calls.enumerated().map { k, c in
            guard let s = c.score else { throw LabelError("\(id): response \(k) unscored: \(c.error ?? "no verdict")", response: k) }
            return s
        }
    }

    /// One JudgeCall per response of every request, in order; requests run `concurrency` at a time.
    public func judge(_ requests: [LabelRequest]) throws -> [[JudgeCall]] {
        guard config.mode == .pointwise else {
            throw LabelError("\(id): labeller.mode is pairwise; it compares pairs of responses (compare) and gives no scores")
        }
        var prompts: [String] = []
        for r in requests {
            for resp in r.responses { prompts.append(try render(r, response: resp)) }
        }
        let calls = try run(prompts)
        var out: [[JudgeCall]] = [], next = 0
        for r in requests {
            out.append(Array(calls[next..<next + r.responses.count]))
            next += r.responses.count
        }
        return out
    }

    func render(_ r: LabelRequest, response: String) throws -> String {
        var vars: [String: Value] = ["prompt": .string(r.prompt), "response": .string(response)]
        vars["answer"] = r.answer.map { .string($0) } ?? .none
        do { return try template.render(vars) } catch {
            throw LabelError("labeller.prompt_template \(config.promptTemplate ?? "(built-in)"): rendering failed: \(error)")
        }
    }

    /// Sends every prompt on `concurrency` worker threads; the first fatal error (or a stop) ends all.
    func run(_ prompts: [String]) throws -> [JudgeCall] {
        let exchange = try HTTPExchange(config: config, client: httpClient(), interrupted: interrupted)
        let state = WorkQueue(count: prompts.count)
        let group = DispatchGroup()
        for _ in 0..<min(config.concurrency, max(prompts.count, 1)) {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                while let i = state.take() {
                    do { state.put(i, try call(prompts[i], exchange)) } catch { state.fail(error) }
                }
            }
        }
        group.wait()
        if let e = state.error { throw e }
        return state.results.map { $0! }
    }

    func call(_ prompt: String, _ exchange: HTTPExchange) throws -> JudgeCall {
        let start = ContinuousClock.now
        let (reply, retries) = try exchange.send(userMessage: prompt)
        let latency = seconds(ContinuousClock.now - start)
        var c = JudgeCall(prompt: prompt, reply: reply.text, verdict: nil, score: nil, latencyS: latency, retries: retries, error: reply.error)
        if c.error == nil, let text = reply.text {
            (c.verdict, c.score, c.error) = config.mode == .pairwise ? parsePreference(text) : parse(text)
        }
        metrics.record(latency: latency, retries: retries, parsed: c.error == nil)
        return c
    }

    /// The regex's first group in a reply's text, or why there is none.
    func match(_ text: String) -> (String?, String?) {
        let ns = text as NSString
        guard let m = regex.firstMatch(in: text, range: NSRange(location: 0, length: ns.length)),
              m.numberOfRanges > 1, m.range(at: 1).location != NSNotFound else {
            return (nil, "the reply does not match labeller.parse (\(regex.pattern))")
        }
        return (ns.substring(with: m.range(at: 1)), nil)
    }

    /// The verdict and score in a reply's text, or why there is none.
    func parse(_ text: String) -> (String?, Float?, String?) {
        let (found, why) = match(text)
        guard let verdict = found else { return (nil, nil, why) }
        guard let d = Double(verdict.trimmingCharacters(in: .whitespaces)), d.isFinite, abs(d) <= maxScoreMagnitude else {
            return (verdict, nil, "verdict '\(verdict)' is not a finite number")
        }
        return (verdict, Float(d), nil)
    }

    private func httpClient() -> HTTPClient {
        if let client { return client }
        var c = HTTPClient.Configuration()
        c.timeout = .init(connect: .milliseconds(Int64(config.timeoutS * 1000)))
        let made = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: c)
        client = made
        return made
    }
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// The work of one `run`: the next index to send, the results, the first fatal error.
final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private(set) var results: [JudgeCall?]
    private(set) var error: Error?
    init(count: Int) { results = Array(repeating: nil, count: count) }

    func take() -> Int? {
        lock.withLock {
            guard error == nil, next < results.count else { return nil }
            next += 1
            return next - 1
        }
    }
    func put(_ i: Int, _ c: JudgeCall) { lock.withLock { results[i] = c } }
    func fail(_ e: Error) {
        lock.withLock {
            // A stop request is reported over the errors it caused in other workers.
            if error == nil || (e as? LabelError)?.interrupted == true { error = e }
        }
    }
}

/// Counts for the round metrics: judge/requests, judge/retries, judge/parse_failures and the
/// latency percentiles.
final class JudgeMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var latencies: [Double] = []
    private var retries = 0, failures = 0

    func record(latency: Double, retries r: Int, parsed: Bool) {
        lock.withLock {
            latencies.append(latency); retries += r
            if !parsed { failures += 1 }
        }
    }

    func take() -> [(String, Double)] {
        lock.withLock {
            let sorted = latencies.sorted()
            func pct(_ p: Double) -> Double {
                sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)]
            }
            defer { latencies = []; retries = 0; failures = 0 }
            return [("judge/requests", Double(sorted.count)), ("judge/retries", Double(retries)),
                    ("judge/parse_failures", Double(failures)), ("judge/latency_p50_s", pct(0.5)), ("judge/latency_p95_s", pct(0.95))]
        }
    }
}
