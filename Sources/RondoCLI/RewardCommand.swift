// `rondo rm …`: reward models (`rondo rm train`).

import ArgumentParser
import Foundation
import Training

struct RM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Reward models.",
        subcommands: [RMTrain.self])
}

struct RMTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a Bradley–Terry reward model on preference pairs (as TRL's RewardTrainer).",
        discussion: """
            Data: JSON lines {"chosen": ..., "rejected": ...} whole sequences, optionally after a shared \
            "prompt"; or the "_ids" token-id forms. The score is read at the last non-pad token; the loss \
            is mean −log σ(r_chosen − r_rejected). --model may be a reward model \
            (…ForSequenceClassification, one label) or a causal LM, which then gets a fresh score head \
            ~ Normal(0, initializer_range) drawn from --seed. With --lora-r, a PEFT LoRA adapter trains on \
            the frozen --model instead, together with its own copy of the score head (PEFT's SEQ_CLS task, \
            modules_to_save ["classifier", "score"]); --out then holds the adapter, whose score head is saved \
            as base_model.model.score.weight. --adapter DIR evaluates or continues such an adapter.
            """)

    @Option(help: "Starting model: a reward model or a causal LM (a checkpoint directory with --resume).")
    var model: String
    @Option(help: "Preference pairs (JSON lines).")
    var data: String
    @Option(help: "Checkpoint directory to write.")
    var out: String?
    @Flag(help: "Print {loss, accuracy, margin, rewards/chosen, rewards/rejected} over the whole data file; no training, no --out.")
    var evalOnly = false
    @Flag(help: "Continue the interrupted run whose checkpoint is --model (same options).")
    var resume = false
    @OptionGroup var lora: LoRAArguments
    @OptionGroup var training: TrainingArguments
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if !evalOnly && out == nil { throw ValidationError("--out is required unless --eval-only") }
    }

    func run() throws {
        var o = RewardOptions(model: URL(fileURLWithPath: model), data: URL(fileURLWithPath: data), out: out.map { URL(fileURLWithPath: $0) })
        o.evalOnly = evalOnly; o.resume = resume; o.threads = compute.threads
        o.run = training.run; o.optimizer = training.optimizer(defaultLR: 1e-5)
        o.lora = try lora.options()
        try runTraining(evalOnly: evalOnly) { try RewardJob.run(o, progress: $0) }
    }
}
