// The routes of `rondo serve` and the OpenAI reply shapes: a whole completion, or server-sent
// events (one chunk per token and choice, a final chunk per choice with its finish_reason, then
// `data: [DONE]`). Text is the tokens decoded with special tokens skipped, as `rondo generate`
// writes it; streamed deltas hold back an incomplete UTF-8 character until its last byte arrives.
// A client that goes away cancels its request, which frees its slots at the next decode step.

import Foundation
import Hummingbird
import Model
import NIOCore
import Sampling
import Tokenizers

struct OpenAIRoutes: @unchecked Sendable {
    let sampler: ContinuousSampler
    let tokenizer: Tokenizer
    let name: String
    let reader: RequestReader

    func register(_ router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in jsonResponse(.object(["status": .string("ok")])) }
        router.get("/v1/models") { _, _ in
            jsonResponse(.object(["object": .string("list"), "data": .array([.object([
                "id": .string(name), "object": .string("model"), "created": .number(0), "owned_by": .string("rondo"),
            ])])]))
        }
        router.post("/v1/completions") { request, _ in await generate(request, .completions) }
        router.post("/v1/chat/completions") { request, _ in await generate(request, .chat) }
    }

    func generate(_ request: Request, _ endpoint: Endpoint) async -> Response {
        do {
            var request = request
            let body: ByteBuffer
            do { body = try await request.collectBody(upTo: 8 << 20) } catch {
                throw APIError(413, "the request body is larger than 8 MiB")
            }
            let parsed = try reader.read(Data(body.readableBytesView), endpoint)
            let (events, continuation) = AsyncStream<SlotEvent>.makeStream()
            let ticket: SlotTicket
            do { ticket = try sampler.submit(parsed.slot) { continuation.yield($0) } } catch let e as SamplingError {
                throw APIError(400, e.description, param: endpoint == .chat ? "messages" : "prompt", code: "context_length_exceeded")
            }
            let reply = Reply(endpoint: endpoint, id: (endpoint == .chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString,
                              created: Int(Date().timeIntervalSince1970), model: name, n: parsed.slot.n,
                              promptTokens: parsed.slot.prompt.count, logprobs: parsed.logprobs, tokenizer: tokenizer)
            if parsed.stream { return streamed(reply, events, ticket) }
            defer { ticket.cancel() }
            return jsonResponse(try await reply.collect(events))
        } catch let e as APIError {
            return jsonResponse(e.json, status: e.status)
        } catch {
            return jsonResponse(APIError(500, "\(error)", type: "server_error").json, status: 500)
        }
    }

    func streamed(_ reply: Reply, _ events: AsyncStream<SlotEvent>, _ ticket: SlotTicket) -> Response {
        let body = ResponseBody { writer in
            defer { ticket.cancel() }
            var state = reply.startStream()
            for chunk in state.opening() { try await writer.write(ByteBuffer(string: chunk)) }
            for await e in events {
                let (chunks, done) = try state.take(e)
                for chunk in chunks { try await writer.write(ByteBuffer(string: chunk)) }
                if done { break }
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}

/// The reply to one request, built from the sampler's events.
struct Reply: @unchecked Sendable {
    let endpoint: Endpoint
    let id: String
    let created: Int
    let model: String
    let n: Int
    let promptTokens: Int
    let logprobs: Bool
    let tokenizer: Tokenizer

    static func reason(_ r: FinishReason) -> String { r == .length ? "length" : "stop" }

    /// Waits for every choice and returns the whole completion.
    func collect(_ events: AsyncStream<SlotEvent>) async throws -> JSONValue {
        var tokens = [[Int32]](repeating: [], count: n), lps = [[Float]](repeating: [], count: n)
        var reasons = [FinishReason?](repeating: nil, count: n), left = n
        for await e in events {
            switch e {
            case .token(let c, let id, let lp): tokens[c].append(id); lps[c].append(lp)
            case .finished(let c, let r): reasons[c] = r; left -= 1
            case .failed(let m): throw APIError(500, m, type: "server_error")
            }
            if left == 0 { break }
        }
        guard left == 0 else { throw APIError(499, "the request was cancelled") }
        let choices: [JSONValue] = (0..<n).map { c in
            let text = tokenizer.decode(tokens[c], skipSpecialTokens: true)
            var o: [String: JSONValue] = ["index": .number(Double(c)), "finish_reason": .string(Self.reason(reasons[c]!)),
                                          "logprobs": logprobs ? logprobsJSON(tokens[c], lps[c]) : .null]
            if endpoint == .chat {
                o["message"] = .object(["role": .string("assistant"), "content": .string(text)])
            } else {
                o["text"] = .string(text)
            }
            return .object(o)
        }
        let completion = tokens.map(\.count).reduce(0, +)
        return .object(["id": .string(id), "object": .string(endpoint == .chat ? "chat.completion" : "text_completion"),
                        "created": .number(Double(created)), "model": .string(model), "choices": .array(choices),
                        "usage": .object(["prompt_tokens": .number(Double(promptTokens)), "completion_tokens": .number(Double(completion)),
                                          "total_tokens": .number(Double(promptTokens + completion))])])
    }

    /// Per-token log-probabilities in the endpoint's shape (the chosen tokens only).
    func logprobsJSON(_ ids: [Int32], _ lps: [Float]) -> JSONValue {
        let pieces = ids.map { String(decoding: tokenizer.bytes($0), as: UTF8.self) }
        if endpoint == .chat {
            return .object(["content": .array(zip(ids, lps).enumerated().map { k, t in
                .object(["token": .string(pieces[k]), "logprob": .number(Double(t.1)),
                         "bytes": .array(tokenizer.bytes(t.0).map { .number(Double($0)) }), "top_logprobs": .array([])])
            })])
        }
        var offsets: [JSONValue] = [], at = 0
        for p in pieces { offsets.append(.number(Double(at))); at += p.count }
        return .object(["tokens": .array(pieces.map { .string($0) }), "token_logprobs": .array(lps.map { .number(Double($0)) }),
                        "top_logprobs": .null, "text_offset": .array(offsets)])
    }

    func startStream() -> StreamState { StreamState(reply: self) }

    /// Server-sent event chunks: `data: {json}\n\n`.
    func chunk(_ choice: Int, text: String?, ids: [Int32], lps: [Float], finish: String?, role: Bool = false) -> String {
        var c: [String: JSONValue] = ["index": .number(Double(choice)), "finish_reason": finish.map { .string($0) } ?? .null,
                                      "logprobs": logprobs && !ids.isEmpty ? logprobsJSON(ids, lps) : .null]
        if endpoint == .chat {
            var delta: [String: JSONValue] = text.map { ["content": .string($0)] } ?? [:]
            if role { delta["role"] = .string("assistant") }
            c["delta"] = .object(delta)
        } else {
            c["text"] = .string(text ?? "")
        }
        let object: JSONValue = .object(["id": .string(id), "object": .string(endpoint == .chat ? "chat.completion.chunk" : "text_completion"),
                                         "created": .number(Double(created)), "model": .string(model), "choices": .array([.object(c)])])
        return "data: " + String(decoding: (try? JSONEncoder().encode(object)) ?? Data(), as: UTF8.self) + "\n\n"
    }
}

/// A streamed reply's progress: each choice's tokens and how much of its text was sent.
struct StreamState {
    let reply: Reply
    var tokens: [[Int32]]
    var sent: [Int]  // UTF-8 bytes of text sent per choice
    var pending: [(ids: [Int32], lps: [Float])]  // tokens whose text is held back (an incomplete character)
    var left: Int

    init(reply: Reply) {
        self.reply = reply
        tokens = Array(repeating: [], count: reply.n); sent = Array(repeating: 0, count: reply.n); left = reply.n
        pending = Array(repeating: ([], []), count: reply.n)
    }

    /// Chat streams open every choice with the assistant role.
    func opening() -> [String] {
        guard reply.endpoint == .chat else { return [] }
        return (0..<reply.n).map { reply.chunk($0, text: "", ids: [], lps: [], finish: nil, role: true) }
    }

    /// The chunks an event produces, and whether every choice is done.
    mutating func take(_ e: SlotEvent) throws -> ([String], Bool) {
        switch e {
        case .token(let c, let id, let lp):
            tokens[c].append(id)
            pending[c].ids.append(id); pending[c].lps.append(lp)
            let full = reply.tokenizer.decode(tokens[c], skipSpecialTokens: true)
            guard !full.hasSuffix("\u{FFFD}") else { return ([], false) }  // wait for the character's last byte
            let delta = String(decoding: Array(full.utf8.dropFirst(sent[c])), as: UTF8.self)
            sent[c] = full.utf8.count
            defer { pending[c] = ([], []) }
            return ([reply.chunk(c, text: delta, ids: pending[c].ids, lps: pending[c].lps, finish: nil)], false)
        case .finished(let c, let r):
            let full = reply.tokenizer.decode(tokens[c], skipSpecialTokens: true)
            let rest = String(decoding: Array(full.utf8.dropFirst(sent[c])), as: UTF8.self)
            sent[c] = full.utf8.count
            left -= 1
            defer { pending[c] = ([], []) }
            return ([reply.chunk(c, text: rest.isEmpty ? nil : rest, ids: pending[c].ids, lps: pending[c].lps, finish: Reply.reason(r))], left == 0)
        case .failed(let m):
            throw APIError(500, m, type: "server_error")
        }
    }
}
