// `rondo logprobs`.

import ArgumentParser
import Foundation
import Training

struct Logprobs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-token log-probabilities of responses under a causal LM.",
        discussion: """
            Input lines: {"prompt_ids": [...], "response_ids": [...]} (other keys are kept).
            Output lines: the input line plus "logprobs" (one per response token: \
            log p(response[j] | prompt, response[<j])) and "sum". Floats are written as the shortest \
            decimal that round-trips to float32; non-finite values as "NaN", "Infinity", "-Infinity".
            """)

    @Option(help: "HF model directory (config.json + model.safetensors).")
    var model: String
    @Option(help: "JSON-lines input file ('-' for standard input).")
    var input: String
    @Option(help: "Output file (default: standard output). Written atomically.")
    var output: String?
    @Option(help: "Sequences per forward pass.")
    var batchSize: Int = 16
    @Option(help: "A PEFT LoRA adapter directory for --model: score with the adapter on.")
    var adapter: String?
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        var o = LogprobsOptions(model: URL(fileURLWithPath: model), input: URL(fileURLWithPath: input),
                                output: output.map { URL(fileURLWithPath: $0) })
        o.batchSize = batchSize
        o.threads = compute.threads
        o.adapter = adapter.map { URL(fileURLWithPath: $0) }
        try report(LogprobsJob.run(o))
    }
}
