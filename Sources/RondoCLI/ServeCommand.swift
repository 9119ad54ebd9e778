// `rondo serve`.

import ArgumentParser
import Campaign
import Dispatch
import Foundation
import Serving

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model or a campaign round behind an OpenAI-compatible HTTP API.",
        discussion: """
            Endpoints: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions \
            (the model's chat template), with temperature, top_p, max_tokens, stop, n, seed, logprobs and \
            stream (server-sent events). Requests share --batch-size decoding slots as they arrive \
            (continuous batching). Binds to 127.0.0.1 unless --host says otherwise. With --api-key-env, \
            /v1/* requires `Authorization: Bearer <the variable's value>`. SIGTERM or SIGINT stop it \
            gracefully (requests in flight finish). Choice j of a request with "seed": s equals sample j \
            of `rondo generate --seed s` on that one prompt.
            """)

    @Option(help: "HF model directory (config.json + model.safetensors + tokenizer.json).")
    var model: String?
    @Option(help: "A campaign directory: serve one of its rounds' policy.")
    var campaign: String?
    @Option(help: "With --campaign: the round (default: the last committed).")
    var round: Int?
    @Option(help: "Address to bind (default loopback only).")
    var host = "127.0.0.1"
    @Option(help: "Port (0: any free port; the address is printed).")
    var port = 8000
    @Option(help: "Sequences decoded at once (continuous batching slots).")
    var batchSize = 16
    @Option(help: "Most positions per sequence, prompt and response (default: the model's max_position_embeddings).")
    var maxLen: Int?
    @Option(help: "Name of an environment variable holding the API key clients must send as a bearer token.")
    var apiKeyEnv: String?
    @Option(help: "The model id in /v1/models and replies (default: the directory's name, or CAMPAIGN/round-N).")
    var name: String?
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard (model == nil) != (campaign == nil) else { throw ValidationError("give exactly one of --model DIR and --campaign RUN") }
        if round != nil && campaign == nil { throw ValidationError("--round needs --campaign") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        if let m = maxLen, m < 2 { throw ValidationError("--max-len must be at least 2") }
    }

    func run() throws {
        var dir: URL, label: String
        if let campaign {
            let store = CampaignStore(root: URL(fileURLWithPath: campaign))
            let rounds = try store.committedRounds()
            guard let n = round ?? rounds.last else { throw ValidationError("\(campaign): no committed round to serve") }
            guard rounds.contains(n) else {
                throw ValidationError("\(campaign): round \(n) is not committed (committed: \(rounds.map(String.init).joined(separator: ", ")))")
            }
            dir = store.roundURL(n).appendingPathComponent("policy")
            label = "\(store.root.lastPathComponent)/round-\(n)"
        } else {
            dir = URL(fileURLWithPath: model!)
            label = dir.standardizedFileURL.lastPathComponent
        }
        var o = ServeOptions(model: dir, name: name ?? label)
        o.host = host; o.port = port; o.batchSize = batchSize; o.maxLen = maxLen; o.threads = compute.threads
        if let env = apiKeyEnv {
            guard let key = ProcessInfo.processInfo.environment[env], !key.isEmpty else {
                throw ValidationError("--api-key-env \(env): the variable is not set (or empty); export it first")
            }
            o.apiKey = key
        }
        let options = o
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        Task.detached {
            do { try await ModelServer.run(options) { report($0) } } catch { failure = error }
            done.signal()
        }
        done.wait()
        if let failure { throw failure }
    }
}
