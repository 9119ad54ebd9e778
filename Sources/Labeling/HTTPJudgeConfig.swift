// The settings of an HTTP judge (`labeller: {type: http, …}`, docs/judges.md): an OpenAI-compatible
// chat-completions endpoint asked to score each response. The keys sit directly in the campaign's
// `labeller` mapping; the campaign config decodes this struct from that mapping and checks for
// unknown keys. `validate` names each bad key.

import Foundation

/// How the judge is asked: pointwise (one score per response) or pairwise (which of two responses
/// is better; campaigns pair it with `pairs.strategy: judge_pairwise`, checked by the campaign config).
public enum JudgeMode: String, Codable, Sendable { case pointwise, pairwise }

public struct HTTPJudgeConfig: Codable, Sendable, Equatable {
    /// The chat-completions URL, e.g. http://127.0.0.1:8000/v1/chat/completions.
    public var url: String
    /// The `model` field of each request.
    public var model: String = "judge"
    /// The name of an environment variable holding the API key (sent as a bearer token); the key
    /// itself is read at run time and written nowhere.
    public var apiKeyEnv: String? = nil
    public var mode: JudgeMode = .pointwise
    /// A Jinja file rendered into the judge's user message (variables `prompt`, `response`, `answer`;
    /// pairwise: `response_a`, `response_b` instead of `response`); nil = the built-in template
    /// (`HTTPJudge.defaultTemplate`, `HTTPJudge.defaultPairwiseTemplate`).
    public var promptTemplate: String? = nil
    /// A regular expression whose first group is the score (pairwise: A, B or tie); nil =
    /// `HTTPJudge.defaultParse` (`HTTPJudge.defaultPairwiseParse`).
    public var parse: String? = nil
    public var temperature: Double = 0
    public var maxTokens: Int = 64
    /// Requests in flight at once.
    public var concurrency: Int = 4
    /// Seconds for one request (connect, send, reply).
    public var timeoutS: Double = 60
    /// Further attempts after a connection error, a timeout, a 429 or a 5xx (exponential backoff
    /// with jitter, or the server's Retry-After).
    public var retries: Int = 3
    /// Requests started per second at most (nil = no limit).
    public var maxRequestsPerS: Double? = nil
    /// The largest share of a round's samples that may stay unscored (pairwise: of its asked pairs
    /// left unjudged by an unparseable reply); above it the round is not committed.
    public var maxUnscored: Double = 0.2

    public init(url: String) { self.url = url }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case url, model, apiKeyEnv = "api_key_env", mode, promptTemplate = "prompt_template", parse, temperature
        case maxTokens = "max_tokens", concurrency, timeoutS = "timeout_s", retries, maxRequestsPerS = "max_requests_per_s"
        case maxUnscored = "max_unscored"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = HTTPJudgeConfig(url: "")
        url = try c.decode(String.self, forKey: .url)
        model = try c.decodeIfPresent(String.self, forKey: .model) ?? d.model
        apiKeyEnv = try c.decodeIfPresent(String.self, forKey: .apiKeyEnv)
        mode = try c.decodeIfPresent(JudgeMode.self, forKey: .mode) ?? d.mode
        promptTemplate = try c.decodeIfPresent(String.self, forKey: .promptTemplate)
        parse = try c.decodeIfPresent(String.self, forKey: .parse)
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? d.temperature
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens) ?? d.maxTokens
        concurrency = try c.decodeIfPresent(Int.self, forKey: .concurrency) ?? d.concurrency
        timeoutS = try c.decodeIfPresent(Double.self, forKey: .timeoutS) ?? d.timeoutS
        retries = try c.decodeIfPresent(Int.self, forKey: .retries) ?? d.retries
        maxRequestsPerS = try c.decodeIfPresent(Double.self, forKey: .maxRequestsPerS)
        maxUnscored = try c.decodeIfPresent(Double.self, forKey: .maxUnscored) ?? d.maxUnscored
    }

    /// Checks every value; `bad(key, why)` makes the error (keys without the `labeller.` prefix).
    public func validate(_ bad: (String, String) -> Error) throws {
        guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme), u.host != nil else {
            throw bad("url", "must be an http(s) URL such as http://127.0.0.1:8000/v1/chat/completions (found '\(url)')")
        }
        if let e = apiKeyEnv, e.isEmpty || e.contains("=") {
            throw bad("api_key_env", "must be the name of an environment variable (not the key itself)")
        }
        if let p = parse {
            let re: NSRegularExpression
            do { re = try NSRegularExpression(pattern: p) } catch {
                throw bad("parse", "is not a valid regular expression ('\(p)'): \(error.localizedDescription)")
            }
            if re.numberOfCaptureGroups < 1 { throw bad("parse", "needs a capture group for the score, e.g. 'Score: ([0-9.]+)'") }
        }
        for (key, v) in [("temperature", temperature), ("timeout_s", timeoutS), ("max_unscored", maxUnscored)] where !v.isFinite {
            throw bad(key, "is \(v); it must be a finite number")
        }
        if temperature < 0 { throw bad("temperature", "must be ≥ 0") }
        if maxTokens < 1 { throw bad("max_tokens", "must be ≥ 1") }
        if concurrency < 1 { throw bad("concurrency", "must be ≥ 1") }
        if timeoutS <= 0 { throw bad("timeout_s", "must be > 0") }
        if retries < 0 { throw bad("retries", "must be ≥ 0") }
        if let r = maxRequestsPerS, !(r.isFinite && r > 0) { throw bad("max_requests_per_s", "must be > 0 (or omitted for no limit)") }
        if !(0...1).contains(maxUnscored) { throw bad("max_unscored", "must be in [0, 1]") }
    }
}
