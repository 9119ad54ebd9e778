// `rondo bench …`: speed and memory measurements, one JSON line each.

import ArgumentParser
import Foundation
import Model
import Training

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed and memory; each prints one JSON line.",
        subcommands: [BenchTrain.self, BenchBuffer.self, BenchTokenize.self, BenchDPO.self, BenchPPO.self, BenchSample.self])
}

/// --model DIR or --config CONFIG.json: the model a bench runs on.
struct BenchModelSource: ParsableArguments {
    @Option(help: "HF model directory.")
    var model: String?
    @Option(help: "HF config.json (random init, seed 1234) instead of --model.")
    var config: String?

    func validate() throws {
        guard (model == nil) != (config == nil) else { throw ValidationError("give exactly one of --model or --config") }
    }

    var url: URL { URL(fileURLWithPath: model ?? config!) }
    var isConfig: Bool { config != nil }
}

/// --steps and --warmup of the benches that time optimizer steps.
struct BenchSteps: ParsableArguments {
    @Option(help: "Timed steps.")
    var steps: Int = 5
    @Option(help: "Warm-up steps (not timed).")
    var warmup: Int = 2

    /// These counts on `source`'s model with `threads` threads.
    func run(_ source: BenchModelSource, threads: Int) -> StepBenchRun {
        var r = StepBenchRun(source: source.url, sourceIsConfig: source.isConfig)
        r.steps = steps; r.warmup = warmup; r.threads = threads
        return r
    }
}

/// Runs a bench with a progress line on standard error, then prints its JSON line.
func printBench(progressEvery every: Int = 10, _ body: (@escaping (String) -> Void) throws -> String) throws {
    let progress = ProgressLine(every: every)
    let line = try body(progress.update)
    progress.finish()
    print(line)
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "SFT forward + backward on random tokens (medians after warm-up).",
        discussion: """
            Keys as ../shared/bench/peers/train_step.py names them: tokens_per_s, ms_per_step (medians),
            peak_rss_mib; plus phase times, FLOPs (TRL's 6N + 12·L·T·d formula) and MFU against the \
            sgemm rate measured at start-up (sgemm_gflop_per_s: OpenBLAS at one layer's shapes).
            """)

    @OptionGroup var source: BenchModelSource
    @Option(help: "Sequences per step.")
    var batch: Int = 8
    @Option(help: "Tokens per sequence.")
    var seq: Int = 256
    @OptionGroup var timing: BenchSteps
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        var o = TrainBenchOptions(run: timing.run(source, threads: compute.threads))
        o.batch = batch; o.seqLen = seq
        try printBench { try TrainBench.run(o, progress: $0) }
    }
}
