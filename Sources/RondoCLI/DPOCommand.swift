// `rondo dpo`: offline DPO.

import ArgumentParser
import Foundation
import Training

extension DPOLossType: ExpressibleByArgument {}

struct DPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract: "Offline Direct Preference Optimisation (as TRL's DPOTrainer).",
        discussion: """
            Data: JSON lines {"prompt": ..., "chosen": ..., "rejected": ...}, or the "_ids" token-id forms. \
            Log-probs are summed over completion tokens; losses: sigmoid −log σ(βd), ipo (length-normalised, \
            as TRL), hinge relu(1 − βd), robust (uses --label-smoothing). Reference log-probs are computed \
            once before training. Metrics as TRL logs them: loss, rewards/chosen, rewards/rejected, \
            rewards/accuracies, rewards/margins, logps/chosen, logps/rejected, grad_norm, learning_rate.
            """)

    @Option(help: "Policy to train: an HF causal-LM directory (a checkpoint directory with --resume).")
    var model: String
    @Option(help: "Frozen reference model (default: the starting policy; on --resume, the run's reference).")
    var reference: String?
    @Option(help: "Preference data (JSON lines).")
    var data: String
    @Option(help: "Checkpoint directory to write.")
    var out: String?
    @Option(help: "sigmoid, ipo, hinge or robust.")
    var lossType: DPOLossType = .sigmoid
    @Option(help: "β: the strength of the implicit KL constraint.")
    var beta: Double = 0.1
    @Option(help: "ε of the robust loss (only robust reads it, as in trl 1.16).")
    var labelSmoothing: Double = 0
    @Flag(help: "NOT TRL: per-token mean log-probs in the loss instead of sums (not for ipo).")
    var lengthNormalized = false
    @Option(help: "TRL's rpo_alpha: add alpha × the mean NLL of the chosen completions' tokens (0 = plain DPO).")
    var rpoAlpha: Double = 0
    @Flag(help: "Print the loss and metrics over the whole data file as one JSON line; no training, no --out.")
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
        var o = DPOOptions(model: URL(fileURLWithPath: model), data: URL(fileURLWithPath: data), out: out.map { URL(fileURLWithPath: $0) })
        o.reference = reference.map { URL(fileURLWithPath: $0) }
        o.loss = DPOLossConfig(lossType: lossType, beta: beta, labelSmoothing: labelSmoothing, lengthNormalized: lengthNormalized,
                               rpoAlpha: rpoAlpha)
        o.evalOnly = evalOnly; o.resume = resume; o.threads = compute.threads
        o.lora = try lora.options()
        o.run = training.run; o.optimizer = training.optimizer(defaultLR: 1e-6)
        try runTraining(evalOnly: evalOnly) { try DPOJob.run(o, progress: $0) }
    }
}
