// LoRA options of the training commands (PEFT LoraConfig names).

import ArgumentParser
import Foundation
import Model
import Training

/// The shape of a new adapter.
struct LoRAShapeArguments: ParsableArguments {
    @Option(help: "Train a new LoRA adapter of this rank on the frozen base instead of every parameter.")
    var loraR: Int?
    @Option(help: "lora_alpha: the adapter's output is scaled by alpha / r (alpha / √r with --use-rslora).")
    var loraAlpha: Double = 8
    @Option(help: "Comma-separated projections to adapt: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj or all-linear.")
    var targetModules: String = "q_proj,v_proj"
    @Flag(help: "Rank-stabilised LoRA: scale by alpha / √r.")
    var useRslora = false

    /// The adapter shape, or nil without --lora-r.
    func config() throws -> LoRAConfig? {
        guard let r = loraR else { return nil }
        let names = targetModules.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        do {
            return try LoRAConfig(r: r, alpha: loraAlpha, targets: try LoRATarget.parse(names, what: "--target-modules"),
                                  useRSLoRA: useRslora)
        } catch let e as ModelError { throw ValidationError(e.description) }
    }
}

/// LoRA options of the training commands: a new adapter, or an existing one.
struct LoRAArguments: ParsableArguments {
    @OptionGroup var shape: LoRAShapeArguments
    @Option(help: "A PEFT adapter directory for --model: train on from it, or (with --resume) continue the LoRA run it checkpoints.")
    var adapter: String?

    /// The jobs' LoRA options, or nil for full fine-tuning.
    func options() throws -> LoRAJobOptions? {
        guard shape.loraR != nil || adapter != nil else { return nil }
        return LoRAJobOptions(new: try shape.config(), adapter: adapter.map { URL(fileURLWithPath: $0) })
    }
}
