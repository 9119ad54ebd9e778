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
            (batch · new tokens / whole call), prefill_ms, decode_ms_per_token_step (medians), peak_rss_mib; \
            then the machine's limits measured in the same run: stream_gb_per_s (a read of the decoder's \
            weights), fma_peak_gflop_per_s (the cores' peak fused multiply-add rate), sgemm_gflop_per_s \
            (OpenBLAS at one layer's shapes), bound_ms_per_step (max of the weights' read time and the \
            step's FLOPs at the larger of the two rates), fraction_of_bound, prefill_gflop_per_s, \
            prefill_fraction_of_sgemm and prefill_fraction_of_peak.
            """)

    @OptionGroup var source: BenchModelSource
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

    func run() throws {
        var o = SampleBenchOptions(source: source.url, sourceIsConfig: source.isConfig)
        o.batch = batch; o.promptLen = promptLen; o.newTokens = newTokens; o.repeats = repeats; o.warmup = warmup
        o.threads = compute.threads
        try printBench(progressEvery: 1) { try SampleBench.run(o, progress: $0) }
    }
}
