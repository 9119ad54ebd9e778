// `rondo bench sample`.

import ArgumentParser
import Foundation
import Sampling

struct BenchSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Batched sampling on random prompts (medians after warm-up).",
        discussion: """
            As ../shared/bench/peers/generate.py measures HF generate: random prompt tokens, temperature 1, \
            no top-k/top-p, EOS ignored so every row generates all tokens. Keys: new_tokens_per_s \
            (batch · new tokens / whole call), prefill_ms, decode_ms_per_token_step (medians), peak_rss_mib.
            """)

    @Option(help: "HF model directory.")
    var model: String?
    @Option(help: "HF config.json (random init, seed 1234) instead of --model.")
    var config: String?
    @Option(help: "Sequences decoded at once.")
    var batch: Int = 1
    @Option(help: "Random prompt tokens per sequence.")
    var promptLen: Int = 32
    @Option(help: "Tokens generated per sequence.")
    var newTokens: Int = 128
    @Option(help: "Timed calls.")
    var repeats: Int = 5
    @Option(help: "Warm-up calls (not timed).")
    var warmup: Int = 1
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard (model == nil) != (config == nil) else { throw ValidationError("give exactly one of --model or --config") }
    }

    func run() throws {
        var o = SampleBenchOptions(source: URL(fileURLWithPath: model ?? config!), sourceIsConfig: config != nil)
        o.batch = batch; o.promptLen = promptLen; o.newTokens = newTokens; o.repeats = repeats; o.warmup = warmup
        o.threads = compute.threads
        let progress = ProgressLine(every: 1)
        let line = try SampleBench.run(o, progress: progress.update)
        progress.finish()
        print(line)
    }
}
