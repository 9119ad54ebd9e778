// `rondo bench dpo`.

import ArgumentParser
import Foundation
import Training

struct BenchDPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract: "One DPO update on random tokens (medians after warm-up).",
        discussion: """
            As ../shared/bench/peers/dpo_step.py: rows [chosen_0..P−1, rejected_0..P−1], pair i shares its \
            prompt; reference forward, policy forward + backward, sigmoid loss β = 0.1 on summed response \
            log-probs, clip 1.0, AdamW lr 1e-6 betas (0.9, 0.999) weight decay 0. Keys: pairs_per_s, \
            ms_per_step (medians), peak_rss_mib, phase times, FLOPs and MFU against the sgemm rate \
            measured at start-up (sgemm_gflop_per_s). With --lora-r, a fresh LoRA adapter on the \
            frozen base trains and the reference is the base with the adapter off (TRL + PEFT).
            """)

    @OptionGroup var source: BenchModelSource
    @Option(help: "Preference pairs per step.")
    var pairs: Int = 4
    @Option(help: "Prompt tokens per pair.")
    var promptLen: Int = 64
    @Option(help: "Response tokens per row.")
    var responseLen: Int = 192
    @OptionGroup var lora: LoRAShapeArguments
    @OptionGroup var timing: BenchSteps
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        var o = DPOBenchOptions(run: timing.run(source, threads: compute.threads))
        o.pairs = pairs; o.promptLen = promptLen; o.responseLen = responseLen; o.lora = try lora.config()
        try printBench { try DPOBench.run(o, progress: $0) }
    }
}
