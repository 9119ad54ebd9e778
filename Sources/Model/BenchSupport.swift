// What every `rondo bench …` measurement shares: the model it runs on (and, for the step benches,
// their step counts and threads), medians, number formatting for its JSON line, and the peak memory.

import Foundation
import Kernels

/// A model from a directory, or a random one (seed 1234) from a config.json.
public func loadOrInit(_ url: URL, isConfig: Bool) throws -> (LlamaConfig, ParameterBuffer) {
    if isConfig {
        let config = try LlamaConfig.load(url)
        return (config, ModelDirectory.randomInit(config: config, seed: 1234))
    }
    let m = try ModelDirectory.load(url)
    return (m.config, m.parameters)
}

/// The part of a step bench's options (`bench train`, `dpo`, `ppo`) that is not a size: the model,
/// the warm-up and timed optimizer steps, and the thread count.
public struct StepBenchRun: Sendable {
    /// A model directory, or an HF config.json (random init, seed 1234) when `sourceIsConfig`.
    public var source: URL
    public var sourceIsConfig: Bool
    /// Timed steps.
    public var steps = 5
    /// Steps run before the timed ones.
    public var warmup = 2
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    public init(source: URL, sourceIsConfig: Bool) { self.source = source; self.sourceIsConfig = sourceIsConfig }

    /// Warm-up and timed steps together.
    public var totalSteps: Int { warmup + steps }

    /// Checks the step counts, sets the thread count and loads (or initialises) the model, which
    /// must be a causal LM; `bench` names the command in the errors.
    public func start(_ bench: String) throws -> (LlamaConfig, ParameterBuffer) {
        guard steps >= 1, warmup >= 0 else { throw ModelError("\(bench): --steps ≥ 1 and --warmup ≥ 0 are required") }
        Threads.configure(threads)
        let (config, params) = try loadOrInit(source, isConfig: sourceIsConfig)
        guard config.head == .causalLM else { throw ModelError("\(bench) needs a causal LM") }
        return (config, params)
    }

    /// "step 3/7" for the progress line, with " (warm-up)" during warm-up (step counts from 0).
    public func stepLabel(_ step: Int) -> String {
        "step \(step + 1)/\(totalSteps)\(step < warmup ? " (warm-up)" : "")"
    }
}

extension LlamaConfig {
    /// (N, K) of one layer's weight products y = x · Wᵀ: qkv, o, gate and up together, down.
    public var layerProductShapes: [(n: Int, k: Int)] {
        [(qkvWidth, hiddenSize), (hiddenSize, attentionWidth), (2 * intermediateSize, hiddenSize),
         (hiddenSize, intermediateSize)]
    }

    /// Forward FLOPs of one token row attending to `context` positions: every layer's weight
    /// products, attention's two products (2 · 2 · NH · D · context per layer) and the LM head.
    public func forwardFLOPsPerRow(context: Int) -> Double {
        let products = layerProductShapes.reduce(0) { $0 + $1.n * $1.k }
        let attention = 4 * numHeads * headDim * context
        let head = head == .causalLM ? vocabSize * hiddenSize : hiddenSize
        return 2 * Double(numLayers * products + head) + Double(numLayers * attention)
    }
}

/// Most token rows `measuredSgemmGFLOPS` multiplies at once (its operands stay a few MB).
public let sgemmRateMaxRows = 512

/// OpenBLAS's rate on `threads` threads at one layer's product shapes of `config` with
/// min(rows, `sgemmRateMaxRows`) token rows: the arithmetic ceiling a bench compares itself with.
public func measuredSgemmGFLOPS(config: LlamaConfig, rows: Int, threads: Int) -> Double {
    let m = max(1, min(rows, sgemmRateMaxRows))
    return MachineRates.sgemmGFLOPS(shapes: config.layerProductShapes.map { (m, $0.n, $0.k) }, threads: threads)
}
