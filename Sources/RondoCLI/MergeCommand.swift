// `rondo merge`: fold a PEFT LoRA adapter into its base model.

import ArgumentParser
import Foundation
import Model

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a PEFT LoRA adapter into its base model and write a plain HF model directory.",
        discussion: """
            W + s·B·A for every adapted projection, as PEFT's merge_and_unload (s = lora_alpha / r, or \
            lora_alpha / √r with use_rslora). The result has the base's tensor names and config, so \
            rondo export-gguf makes a GGUF of it. Every file is written atomically.
            """)

    @Option(help: "The base model directory (config.json, model.safetensors, tokenizer files).")
    var base: String
    @Option(help: "The adapter directory (adapter_config.json, adapter_model.safetensors).")
    var adapter: String
    @Option(help: "The merged model directory to write.")
    var out: String

    func run() throws {
        report(try LoRAMerge.run(base: URL(fileURLWithPath: base), adapter: URL(fileURLWithPath: adapter),
                                 out: URL(fileURLWithPath: out)))
    }
}
