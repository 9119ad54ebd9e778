// LoRA options of the training commands (PEFT LoraConfig names).

import ArgumentParser
import Foundation
import Model
import Training

struct LoRAArguments: ParsableArguments {
    @Option(help: "Train a new LoRA adapter of this rank on the frozen --model instead of every parameter (writes a PEFT adapter).")
    var loraR: Int?
    @Option(help: "lora_alpha: the adapter's output is scaled by alpha / r (alpha / √r with --use-rslora).")
    var loraAlpha: Double = 8
    @Option(help: "Comma-separated projections to adapt: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj or all-linear.")
    var targetModules: String = "q_proj,v_proj"
    @Flag(help: "Rank-stabilised LoRA: scale by alpha / √r.")
    var useRslora = false
    @Option(help: "A PEFT adapter directory for --model: train on from it, or (with --resume) continue the LoRA run it checkpoints.")
    var adapter: String?

    /// The jobs' LoRA options, or nil for full fine-tuning.
    func options() throws -> LoRAJobOptions? {
        guard loraR != nil || adapter != nil else { return nil }
        var o = LoRAJobOptions(adapter: adapter.map { URL(fileURLWithPath: $0) })
        if let r = loraR {
            let names = targetModules.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            do {
                o.new = try LoRAConfig(r: r, alpha: loraAlpha, targets: try LoRATarget.parse(names, what: "--target-modules"),
                                       useRSLoRA: useRslora)
            } catch let e as ModelError { throw ValidationError(e.description) }
        }
        return o
    }
}
