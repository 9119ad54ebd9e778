// `rondo sft`, and the training options `rondo rm train` and `rondo dpo` share.

import ArgumentParser
import Foundation
import Training

extension LRScheduleKind: ExpressibleByArgument {}

/// Batching, schedule and optimizer options of the training commands (HF TrainingArguments names).
struct TrainingArguments: ParsableArguments {
    @Option(help: "Passes over the data.")
    var epochs: Int = 1
    @Option(help: "Examples (sft) or pairs (dpo, rm) per forward/backward micro-batch.")
    var batchSize: Int = 8
    @Option(help: "Micro-batches accumulated into one optimizer step.")
    var gradAccum: Int = 1
    @Option(help: "Peak learning rate (default: 2e-5 sft, 1e-5 rm, 1e-6 dpo).")
    var lr: Double?
    @Option(help: "Learning-rate schedule: constant, linear or cosine (each after the warm-up).")
    var schedule: LRScheduleKind = .linear
    @Option(help: "Linear warm-up steps from 0 to the peak learning rate.")
    var warmupSteps: Int = 0
    @Option(help: "Clip the global gradient norm to this value (0: no clipping).")
    var maxGradNorm: Double = 1.0
    @Option(help: "AdamW decoupled weight decay (not applied to RMSNorm weights).")
    var weightDecay: Double = 0
    @Option(help: "AdamW beta1.")
    var adamBeta1: Double = 0.9
    @Option(help: "AdamW beta2.")
    var adamBeta2: Double = 0.999
    @Option(help: "AdamW epsilon.")
    var adamEpsilon: Double = 1e-8
    @Option(help: "Seed of the example order (and of a new reward head).")
    var seed: UInt64 = 42
    @Flag(help: "Keep the file order instead of shuffling every epoch.")
    var noShuffle = false
    @Option(help: "Stop after this optimizer step and write the checkpoint; --resume continues the same schedule.")
    var stopAtStep: Int?

    /// The library's run options.
    var run: RunOptions {
        var r = RunOptions()
        r.epochs = epochs; r.batchSize = batchSize; r.gradAccum = gradAccum; r.seed = seed
        r.shuffle = !noShuffle; r.stopAtStep = stopAtStep
        return r
    }

    /// The library's optimizer options, with `lr` defaulting to `defaultLR`.
    func optimizer(defaultLR: Double) -> OptimizerOptions {
        var o = OptimizerOptions(lr: lr ?? defaultLR)
        o.schedule = schedule; o.warmupSteps = warmupSteps; o.maxGradNorm = maxGradNorm
        o.adamw = AdamWConfig(beta1: adamBeta1, beta2: adamBeta2, eps: adamEpsilon, weightDecay: weightDecay)
        return o
    }
}

/// Runs a training entry point with a progress line; prints evaluation JSON to standard output and
/// the training summary to standard error.
func runTraining(evalOnly: Bool, _ body: (@escaping TrainingProgressHandler) throws -> String) throws {
    let progress = ProgressLine()
    let result = try body { p in progress.update(p.description); return .proceed }
    progress.finish()
    if evalOnly { print(result) } else { report(result) }
}

struct SFT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Supervised fine-tuning on prompt–completion data (as TRL's SFTTrainer).",
        discussion: """
            Data: JSON lines {"prompt": ..., "completion": ...}, or "prompt_ids" / "completion_ids" token \
            ids. Text is tokenised with the model's tokenizer.json (no special tokens are added: write \
            BOS in the prompt; EOS is appended to a completion that lacks it); ids are used as given. \
            The loss is the mean NLL of the completion tokens over each optimizer step. Writes --out as \
            an HF model directory plus optimizer.safetensors, metrics.jsonl and training_args.json.
            """)

    @Option(help: "Starting model: an HF causal-LM directory (a checkpoint directory with --resume).")
    var model: String
    @Option(help: "Training data (JSON lines).")
    var data: String
    @Option(help: "Checkpoint directory to write.")
    var out: String?
    @Flag(help: "Print {loss, completion_tokens} over the whole data file as one JSON line; no training, no --out.")
    var evalOnly = false
    @Flag(help: "Continue the interrupted run whose checkpoint is --model (same options).")
    var resume = false
    @OptionGroup var training: TrainingArguments
    @OptionGroup var lora: LoRAArguments
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if !evalOnly && out == nil { throw ValidationError("--out is required unless --eval-only") }
    }

    func run() throws {
        var o = SFTOptions(model: URL(fileURLWithPath: model), data: URL(fileURLWithPath: data), out: out.map { URL(fileURLWithPath: $0) })
        o.evalOnly = evalOnly; o.resume = resume; o.threads = compute.threads
        o.lora = try lora.options()
        o.run = training.run; o.optimizer = training.optimizer(defaultLR: 2e-5)
        try runTraining(evalOnly: evalOnly) { try SFTJob.run(o, progress: $0) }
    }
}
