// The bodies of POST /v1/completions and /v1/chat/completions, read into a SlotRequest. Every
// field is checked; a bad one is an OpenAI-style 400 naming the field (`param`). Fields Rondo does
// not use (user, frequency_penalty at 0, stream_options, …) are accepted and ignored.

import Foundation
import Model
import Sampling
import Templates
import Tokenizers

/// An error returned as {"error": {"message", "type", "param", "code"}} with an HTTP status.
public struct APIError: Error, CustomStringConvertible, Sendable {
    public let status: Int
    public let message: String
    public let type: String
    public let param: String?
    public let code: String?
    public init(_ status: Int, _ message: String, type: String = "invalid_request_error", param: String? = nil, code: String? = nil) {
        self.status = status; self.message = message; self.type = type; self.param = param; self.code = code
    }
    public var description: String { "\(status) \(message)" }

    var json: JSONValue {
        .object(["error": .object(["message": .string(message), "type": .string(type),
                                   "param": param.map { .string($0) } ?? .null, "code": code.map { .string($0) } ?? .null])])
    }
}

/// A parsed request: what to sample and how to answer.
struct ParsedRequest {
    var slot: SlotRequest
    var stream: Bool
    var logprobs: Bool
}

enum Endpoint { case completions, chat }

struct RequestReader {
    let tokenizer: Tokenizer
    let template: ModelTemplate?
    /// The most positions a sequence may use (prompt + response).
    let maxLen: Int

    func read(_ body: Data, _ endpoint: Endpoint) throws -> ParsedRequest {
        guard let v = try? JSONDecoder().decode(JSONValue.self, from: body), let o = v.object else {
            throw APIError(400, "the request body is not a JSON object")
        }
        func number(_ k: String, _ d: Double, _ range: ClosedRange<Double>) throws -> Double {
            guard let x = o[k], x != .null else { return d }
            guard let n = x.double, n.isFinite, range.contains(n) else {
                throw APIError(400, "'\(k)' must be a number in \(range.lowerBound)...\(range.upperBound); got \(x)", param: k)
            }
            return n
        }
        func int(_ k: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let x = o[k], x != .null else { return nil }
            guard let n = x.int, range.contains(n) else {
                throw APIError(400, "'\(k)' must be an integer in \(range.lowerBound)...\(range.upperBound); got \(x)", param: k)
            }
            return n
        }
        let prompt = try endpoint == .chat ? chatPrompt(o["messages"]) : textPrompt(o["prompt"])
        var r = SlotRequest(prompt: tokenizer.encode(prompt))
        guard !r.prompt.isEmpty else { throw APIError(400, "the prompt encodes to no tokens", param: endpoint == .chat ? "messages" : "prompt") }
        let room = maxLen - r.prompt.count + 1
        r.temperature = Float(try number("temperature", 1, 0...2))
        r.topP = Float(try number("top_p", 1, 0.000001...1))
        r.n = try int("n", 1...64) ?? 1
        let asked = try int("max_tokens", 1...Int(Int32.max)) ?? int("max_completion_tokens", 1...Int(Int32.max))
        r.maxNewTokens = asked ?? (endpoint == .chat ? max(1, min(256, room)) : 16)
        if r.prompt.count + r.maxNewTokens - 1 > maxLen {
            throw APIError(400, "the prompt has \(r.prompt.count) tokens and max_tokens is \(r.maxNewTokens): \(r.prompt.count + r.maxNewTokens - 1) positions, more than this model's \(maxLen); shorten the prompt or lower max_tokens",
                           param: asked == nil ? (endpoint == .chat ? "messages" : "prompt") : "max_tokens", code: "context_length_exceeded")
        }
        r.stopStrings = try stops(o["stop"])
        r.seed = try int("seed", Int.min...Int.max).map { UInt64(bitPattern: Int64($0)) } ?? UInt64.random(in: 0...UInt64.max)
        var logprobs = false
        switch (endpoint, o["logprobs"]) {
        case (_, nil), (_, .null?): break
        case (.chat, .bool(let b)?): logprobs = b
        case (.completions, let x?):
            guard let k = x.int, (0...5).contains(k) else { throw APIError(400, "'logprobs' must be an integer in 0...5", param: "logprobs") }
            logprobs = true
        case (.chat, _?): throw APIError(400, "'logprobs' must be true or false", param: "logprobs")
        }
        if let k = try int("top_logprobs", 0...20), k > 0 {
            throw APIError(400, "'top_logprobs' > 0 is not supported: Rondo returns the chosen tokens' log-probabilities only", param: "top_logprobs")
        }
        let stream: Bool
        switch o["stream"] {
        case nil, .null?: stream = false
        case .bool(let b)?: stream = b
        default: throw APIError(400, "'stream' must be true or false", param: "stream")
        }
        return ParsedRequest(slot: r, stream: stream, logprobs: logprobs)
    }

    private func textPrompt(_ p: JSONValue?) throws -> String {
        switch p {
        case .string(let s)?: return s
        case .array(let a)? where a.count == 1 && a[0].string != nil: return a[0].string!
        case nil: throw APIError(400, "'prompt' is required", param: "prompt")
        default: throw APIError(400, "'prompt' must be a string (or a list of one string)", param: "prompt")
        }
    }

    private func chatPrompt(_ m: JSONValue?) throws -> String {
        guard let list = m?.array, !list.isEmpty else {
            throw APIError(400, "'messages' must be a non-empty list of {\"role\", \"content\"}", param: "messages")
        }
        var messages: [Value] = []
        for (i, msg) in list.enumerated() {
            guard let role = msg["role"]?.string, let content = msg["content"]?.string else {
                throw APIError(400, "messages[\(i)] needs a string 'role' and a string 'content'", param: "messages")
            }
            messages.append(.dict(OrderedDict([("role", .string(role)), ("content", .string(content))])))
        }
        guard let template else {
            throw APIError(400, "this model has no chat template (chat_template.jinja or tokenizer_config.json's chat_template); use /v1/completions",
                           param: "messages")
        }
        do { return try template.render(messages: .list(messages), addGenerationPrompt: true) } catch {
            throw APIError(400, "the chat template raised: \(error)", param: "messages")
        }
    }

    private func stops(_ s: JSONValue?) throws -> [String] {
        switch s {
        case nil, .null?: return []
        case .string(let x)?: return x.isEmpty ? [] : [x]
        case .array(let a)? where a.count <= 4 && a.allSatisfy({ $0.string != nil }): return a.compactMap(\.string).filter { !$0.isEmpty }
        default: throw APIError(400, "'stop' must be a string or a list of at most 4 strings", param: "stop")
        }
    }
}
