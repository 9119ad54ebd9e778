// `rondo generate`.

import ArgumentParser
import Foundation
import Campaign
import Sampling

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample responses to prompts (batched, KV cache, reproducible seeds).",
        discussion: """
            Prompt lines: {"prompt": "text"} (encoded with the model's tokenizer.json; special tokens \
            such as <|bos|> written in the text are recognised, nothing is added), {"prompt_ids": [...]}, \
            or {"prompt": [chat messages]} (rendered with the model's chat template and the generation prompt).
            Sampling stops at config.json's and generation_config.json's eos_token_id.
            Output: one line per sample, ordered by prompt then sample:
            {"prompt_index", "sample_index", "response_ids", "response" (text, when the model has a \
            tokenizer), "logprobs" (per token, at temperature 1), "finish_reason": "eos" | "stop" | "length"}.
            Sample j of prompt i draws from its own Philox stream (seed, i << 20 | j): the same seed gives \
            the same samples whatever --batch-size and --threads. A stop string ends the sample with the \
            token that completed it (that whole token is kept).
            """)

    @Option(help: "HF model directory (config.json + model.safetensors [+ tokenizer.json]).")
    var model: String
    @Option(help: "JSON-lines prompts file ('-' for standard input).")
    var prompts: String
    @Option(help: "Samples per prompt.")
    var n: Int = 4
    @Option(help: "Softmax temperature (0: greedy, ties to the lowest id).")
    var temperature: Float = 1
    @Option(help: "Keep the k most likely tokens (0: off).")
    var topK: Int = 0
    @Option(help: "Keep the smallest set of most likely tokens with this much probability (1: off).")
    var topP: Float = 1
    @Option(help: "Most tokens per sample.")
    var maxNewTokens: Int = 64
    @Option(help: "Seed of the sampling streams.")
    var seed: UInt64 = 7
    @Option(help: "Sequences decoded at once.")
    var batchSize: Int = 16
    @Option(parsing: .upToNextOption, help: "Stop strings (--stop A B or --stop A --stop B); need the model's tokenizer.json.")
    var stop: [String] = []
    @Option(help: "Output file (default: standard output). Written atomically.")
    var output: String?
    @Option(help: "A PEFT LoRA adapter directory for --model: decode with the adapter merged into the weights.")
    var adapter: String?
    @OptionGroup var compute: ComputeOptions

    /// The library's sampling settings.
    var sampling: SamplingConfig {
        var c = SamplingConfig()
        c.n = n; c.temperature = temperature; c.topK = topK; c.topP = topP
        c.maxNewTokens = maxNewTokens; c.seed = seed; c.batchSize = batchSize; c.stopStrings = stop
        return c
    }

    func validate() throws {
        do { try sampling.validate() } catch let e as SamplingError { throw ValidationError(e.description) }
    }

    func run() throws {
        var o = GenerateOptions(model: URL(fileURLWithPath: model), prompts: URL(fileURLWithPath: prompts),
                                output: output.map { URL(fileURLWithPath: $0) })
        o.sampling = sampling
        o.threads = compute.threads
        o.adapter = adapter.map { URL(fileURLWithPath: $0) }
        let progress = ProgressLine()
        let summary = try GenerateCommand.run(o, progress: progress.update)  // .jsonl.zst → rollout buffer
        progress.finish()
        report(summary)
    }
}
