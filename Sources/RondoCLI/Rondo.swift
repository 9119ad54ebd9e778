// The `rondo` command line: parses options and calls one library entry point per command.

import ArgumentParser
import Foundation
import Model
import Training

@main
struct Rondo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rondo",
        abstract: "Online DPO and iterative RLHF campaigns on a CPU.",
        discussion: """
            Models are Hugging Face directories (config.json + model.safetensors [+ tokenizer.json]).
            Data is JSON lines. Every command exits non-zero with a message naming the file, line or
            tensor when its input is wrong.
            """,
        subcommands: [Logprobs.self, Init.self, Bench.self])
}

/// Options shared by commands that compute.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Threads for matrix products and kernels (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }
}

struct Logprobs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-token log-probabilities of responses under a causal LM.",
        discussion: """
            Input lines: {"prompt_ids": [...], "response_ids": [...]} (other keys are kept).
            Output lines: the input line plus "logprobs" (one per response token:
            log p(response[j] | prompt, response[<j])) and "sum". Floats are written as the shortest
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
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        var o = LogprobsOptions(model: URL(fileURLWithPath: model), input: URL(fileURLWithPath: input),
                                output: output.map { URL(fileURLWithPath: $0) })
        o.batchSize = batchSize
        o.threads = compute.threads
        try report(LogprobsJob.run(o))
    }
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a fresh random model from an HF config.json.",
        discussion: """
            Weights follow transformers' initialisation: Normal(0, initializer_range) for every matrix,
            ones for RMSNorm weights, the pad token's embedding row zeroed. Each tensor draws from its own
            counter-based stream of --seed, so the result is the same bits on every machine.
            tokenizer files next to the config are copied.
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

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed and memory; each prints one JSON line.",
        subcommands: [BenchTrain.self])
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "SFT forward + backward on random tokens (medians after warm-up).",
        discussion: """
            Keys as ../shared/bench/peers/train_step.py names them: tokens_per_s, ms_per_step (medians),
            peak_rss_mib; plus phase times, FLOPs (TRL's 6N + 12·L·T·d formula) and MFU against the
            machine's 191.7 GFLOP/s sgemm ceiling.
            """)

    @Option(help: "HF model directory.")
    var model: String?
    @Option(help: "HF config.json (random init, seed 1234) instead of --model.")
    var config: String?
    @Option(help: "Sequences per step.")
    var batch: Int = 8
    @Option(help: "Tokens per sequence.")
    var seq: Int = 256
    @Option(help: "Timed steps.")
    var steps: Int = 5
    @Option(help: "Warm-up steps (not timed).")
    var warmup: Int = 2
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard (model == nil) != (config == nil) else { throw ValidationError("give exactly one of --model or --config") }
    }

    func run() throws {
        var o = TrainBenchOptions(source: URL(fileURLWithPath: model ?? config!), sourceIsConfig: config != nil)
        o.batch = batch; o.seqLen = seq; o.steps = steps; o.warmup = warmup; o.threads = compute.threads
        print(try TrainBench.run(o, progress: progressPrinter()))
    }
}

/// Prints a summary line to standard error.
func report(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

/// Progress on standard error: rewritten in place on a terminal, silent otherwise.
func progressPrinter() -> (String) -> Void {
    guard isatty(STDERR_FILENO) != 0 else { return { _ in } }
    return { FileHandle.standardError.write(Data("\r\u{1B}[K\($0)".utf8)) }
}
