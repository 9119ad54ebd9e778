// `rondo bench ppo`.

import ArgumentParser
import Campaign
import Foundation

struct BenchPPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppo",
        abstract: "One PPO update on random tokens, as a campaign round runs it (medians after warm-up).",
        discussion: """
            Policy forward + backward and value-model forward + backward on one minibatch of --rows \
            rows of [prompt | response] random tokens, TRL's clipped policy and value losses, gradient \
            clipping and AdamW on both models. The value model is the policy's trunk with a value head. \
            Keys: tokens_per_s, ms_per_step (median), peak_rss_mib, parameter counts.
            """)

    @OptionGroup var source: BenchModelSource
    @Option(help: "Samples per minibatch.")
    var rows: Int = 8
    @Option(help: "Prompt tokens per row.")
    var promptLen: Int = 64
    @Option(help: "Response tokens per row.")
    var responseLen: Int = 192
    @OptionGroup var timing: BenchSteps
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        var o = PPOBenchOptions(run: timing.run(source, threads: compute.threads))
        o.rows = rows; o.promptLen = promptLen; o.responseLen = responseLen
        try printBench { try PPOBench.run(o, progress: $0) }
    }
}
