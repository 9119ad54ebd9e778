// `rondo serve`: an OpenAI-compatible HTTP server (Hummingbird 2) over a ContinuousSampler.
//   GET  /health                 {"status": "ok"}
//   GET  /v1/models              the one model served
//   POST /v1/completions         text prompt (encoded as `rondo generate` encodes "prompt" text)
//   POST /v1/chat/completions    messages rendered with the model's chat template (Templates)
// Both POSTs take temperature, top_p, max_tokens, stop, n, seed, logprobs and stream (server-sent
// events ending with `data: [DONE]`). Requests share the sampler's slots as they arrive
// (continuous batching). Errors are OpenAI-style JSON with 4xx codes; with an API key, /v1/* needs
// `Authorization: Bearer KEY`. SIGTERM/SIGINT shut down gracefully: the listener closes, requests
// in flight finish, then the decoder stops.

import Foundation
import Hummingbird
import Kernels
import Model
import NIOCore
import Sampling
import Templates
import Tokenizers

public struct ServeOptions: Sendable {
    /// An HF model directory (config.json, model.safetensors, tokenizer.json).
    public var model: URL
    /// The model id in /v1/models and in replies.
    public var name: String
    public var host = "127.0.0.1"
    /// 0 picks a free port (printed when listening).
    public var port = 8000
    /// Sequences decoded at once (the sampler's slots).
    public var batchSize = 16
    /// The most positions per sequence (prompt + response); nil = the model's max_position_embeddings.
    public var maxLen: Int? = nil
    /// The bearer token /v1/* requires, when set.
    public var apiKey: String? = nil
    public var threads = 2
    public init(model: URL, name: String) { self.model = model; self.name = name }
}

public enum ModelServer {
    /// Loads the model and serves until SIGTERM/SIGINT; `log` gets the listening address and the end.
    public static func run(_ o: ServeOptions, log: @escaping @Sendable (String) -> Void) async throws {
        Threads.configure(o.threads)
        let loaded = try ModelDirectory.load(o.model)
        guard loaded.config.head == .causalLM else { throw SamplingError("\(o.model.path): is a score model; serve needs a causal LM") }
        let tokURL = o.model.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokURL.path) else {
            throw SamplingError("\(o.model.path): no tokenizer.json; serve needs the model's tokenizer")
        }
        let tokenizer = try Tokenizer(url: tokURL)
        let template = try ModelTemplate.load(directory: o.model)
        let model = LlamaModel(config: loaded.config, parameters: loaded.parameters)
        let positions = max(1, loaded.config.maxPositionEmbeddings)
        let maxLen = min(o.maxLen ?? positions, positions)
        let sampler = try ContinuousSampler(model: model, slots: o.batchSize, maxLen: maxLen, tokenBytes: { tokenizer.bytes($0) })
        defer { sampler.shutdown() }
        let api = OpenAIRoutes(sampler: sampler, tokenizer: tokenizer, name: o.name,
                               reader: RequestReader(tokenizer: tokenizer, template: template, maxLen: maxLen))
        let router = Router()
        router.add(middleware: BearerAuth(key: o.apiKey))
        api.register(router)
        let app = Application(router: router, configuration: .init(address: .hostname(o.host, port: o.port), serverName: "rondo"),
                              onServerRunning: { channel in
                                  let port = channel.localAddress?.port ?? o.port
                                  log("serving \(o.name) (\(o.model.path)) at http://\(o.host):\(port)/v1 with \(o.batchSize) slots of \(maxLen) positions\(template == nil ? "; no chat template: /v1/chat/completions answers 400" : "")")
                              })
        try await app.runService()
        log("stopped: \(sampler.tokensProduced) tokens generated")
    }
}

/// Requires `Authorization: Bearer KEY` on /v1/* when a key is set; /health stays open.
struct BearerAuth<Context: RequestContext>: RouterMiddleware {
    let key: String?
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let key, request.uri.path.hasPrefix("/v1") else { return try await next(request, context) }
        guard request.headers[.authorization] == "Bearer \(key)" else {
            return jsonResponse(APIError(401, "missing or wrong API key; send Authorization: Bearer <key>", code: "invalid_api_key").json, status: 401)
        }
        return try await next(request, context)
    }
}

func jsonResponse(_ v: JSONValue, status: Int = 200) -> Response {
    let data = (try? JSONEncoder().encode(v)) ?? Data("{}".utf8)
    return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
