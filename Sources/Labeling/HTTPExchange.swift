// One judge request over HTTP with its retries: POST a chat completion, wait for the reply while
// polling the stop flag, retry connection errors, timeouts, 429 and 5xx (honouring Retry-After,
// else exponential backoff with jitter), and pace request starts to `max_requests_per_s`.
// Errors name the URL and never contain the API key (it is only ever in the Authorization header).

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A judge's reply: the message text, or why there is none (a garbage body: unscored).
struct JudgeReply {
    var text: String?
    var error: String?
}

final class HTTPExchange: @unchecked Sendable {
    let config: HTTPJudgeConfig
    let client: HTTPClient
    let interrupted: @Sendable () -> Bool
    private let headers: HTTPHeaders
    private let pace = Pacer()

    init(config: HTTPJudgeConfig, client: HTTPClient, interrupted: @escaping @Sendable () -> Bool) throws {
        self.config = config; self.client = client; self.interrupted = interrupted
        var h = HTTPHeaders([("Content-Type", "application/json"), ("Accept", "application/json")])
        if let name = config.apiKeyEnv {
            guard let key = ProcessInfo.processInfo.environment[name], !key.isEmpty else {
                throw LabelError("labeller.api_key_env: the environment variable \(name) is not set (or empty); export it before starting Rondo")
            }
            h.add(name: "Authorization", value: "Bearer \(key)")
        }
        headers = h
    }

    struct Body: Encodable {
        struct Message: Encodable { let role: String; let content: String }
        let model: String
        let messages: [Message]
        let temperature: Double
        let max_tokens: Int
    }

    /// Sends `userMessage`; returns the reply and the retries it took.
    func send(userMessage: String) throws -> (JudgeReply, Int) {
        let body = try JSONEncoder().encode(Body(model: config.model, messages: [.init(role: "user", content: userMessage)],
                                                 temperature: config.temperature, max_tokens: config.maxTokens))
        var retries = 0
        while true {
            try pace.wait(perSecond: config.maxRequestsPerS, interrupted: interrupted, stopped: stopped)
            let outcome = try attempt(body)
            switch outcome {
            case .reply(let r): return (r, retries)
            case .fatal(let e): throw e
            case .retry(let why, let after):
                guard retries < config.retries else {
                    throw LabelError("judge \(config.url): no usable reply after \(retries) retries (labeller.retries = \(config.retries)); last error: \(why)")
                }
                retries += 1
                let backoff = min(30, 0.25 * pow(2, Double(retries - 1))) * Double.random(in: 0.5...1.0)
                try sleep(after.map { min($0, 60) } ?? backoff)
            }
        }
    }

    enum Outcome { case reply(JudgeReply), retry(String, after: Double?), fatal(LabelError) }

    private func stopped() -> LabelError {
        LabelError("judge \(config.url): request abandoned (stop requested); the round is not committed", interrupted: true)
    }

    /// One attempt, waited for in slices of 100 ms so a stop request cancels it at once.
    private func attempt(_ body: Data) throws -> Outcome {
        let request = try HTTPClient.Request(url: config.url, method: .POST, headers: headers, body: .bytes(body))
        let deadline = NIODeadline.now() + .milliseconds(Int64(config.timeoutS * 1000))
        let task = client.execute(request: request, delegate: ResponseAccumulator(request: request, maxBodySize: 16 << 20), deadline: deadline)
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        task.futureResult.whenComplete { box.result = $0; done.signal() }
        while done.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
            if interrupted() { task.cancel(); throw stopped() }
        }
        switch box.result! {
        case .failure(let e): return .retry(describe(e), after: nil)
        case .success(let response): return classify(response)
        }
    }

    private func classify(_ r: HTTPClient.Response) -> Outcome {
        let code = Int(r.status.code)
        let text = r.body.map { String(buffer: $0) } ?? ""
        let snippet = text.count > 300 ? String(text.prefix(300)) + "…" : text
        if code == 429 || code >= 500 {
            return .retry("HTTP \(code) \(snippet)", after: retryAfter(r.headers.first(name: "Retry-After")))
        }
        guard (200..<300).contains(code) else {
            return .fatal(LabelError("judge \(config.url): HTTP \(code) \(snippet); check labeller.url, labeller.model and the key in labeller.api_key_env"))
        }
        struct Completion: Decodable {
            struct Choice: Decodable { struct Message: Decodable { let content: String? }; let message: Message }
            let choices: [Choice]
        }
        guard let c = try? JSONDecoder().decode(Completion.self, from: Data(text.utf8)), let content = c.choices.first?.message.content else {
            return .reply(JudgeReply(text: text, error: "the reply is not a chat completion with choices[0].message.content"))
        }
        return .reply(JudgeReply(text: content, error: nil))
    }

    /// Retry-After as delay-seconds or an HTTP date.
    func retryAfter(_ value: String?) -> Double? {
        guard let v = value?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
        if let s = Double(v), s.isFinite, s >= 0 { return s }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: v).map { max(0, $0.timeIntervalSinceNow) }
    }

    private func describe(_ e: Error) -> String {
        if let h = e as? HTTPClientError {
            if h == .deadlineExceeded || h == .readTimeout { return "no reply within \(config.timeoutS) s (labeller.timeout_s)" }
            if h == .remoteConnectionClosed { return "the server closed the connection without a reply" }
            return "\(h)"
        }
        return "\(e)"
    }

    /// Sleeps `s` seconds, waking every 100 ms to honour a stop request.
    private func sleep(_ s: Double) throws {
        let until = ContinuousClock.now + .milliseconds(Int64(s * 1000))
        while ContinuousClock.now < until {
            if interrupted() { throw stopped() }
            Thread.sleep(forTimeInterval: min(0.1, seconds(until - ContinuousClock.now)))
        }
    }
}

private final class ResultBox: @unchecked Sendable { var result: Result<HTTPClient.Response, Error>? }

/// Spaces request starts at least 1/rate seconds apart across all workers.
final class Pacer: @unchecked Sendable {
    private let lock = NSLock()
    private var next = ContinuousClock.now

    func wait(perSecond rate: Double?, interrupted: () -> Bool, stopped: () -> LabelError) throws {
        guard let rate else { return }
        let slot: ContinuousClock.Instant = lock.withLock {
            let s = max(next, .now)
            next = s + .milliseconds(Int64(1000 / rate))
            return s
        }
        while ContinuousClock.now < slot {
            if interrupted() { throw stopped() }
            Thread.sleep(forTimeInterval: min(0.1, seconds(slot - ContinuousClock.now)))
        }
    }
}
