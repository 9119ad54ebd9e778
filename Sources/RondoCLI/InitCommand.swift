// `rondo init`.

import ArgumentParser
import Foundation
import Training

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a fresh random model from an HF config.json.",
        discussion: """
            Weights follow transformers' initialisation: Normal(0, initializer_range) for every matrix, \
            ones for RMSNorm weights, the pad token's embedding row zeroed. Each tensor draws from its own \
            counter-based stream of --seed, so the result is the same bits on every machine. \
            Tokenizer files next to the config are copied.
            """)

    @Option(help: "HF config.json (model_type llama, mistral or qwen2).")
    var config: String
    @Option(help: "Output model directory.")
    var out: String
    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    func run() throws {
        try report(InitJob.run(config: URL(fileURLWithPath: config), out: URL(fileURLWithPath: out), seed: seed))
    }
}
