// `rondo sft`: supervised fine-tuning on prompt–completion data, as TRL's `SFTTrainer` does it for
// that format (completion-only loss, token-level mean over the optimizer step, AdamW with the HF
// Trainer's schedule and clipping). Writes an HF model directory plus optimizer state and metrics.

import Foundation
import Kernels
import Model

/// Options of an SFT run.
public struct SFTOptions: Sendable {
    /// Starting model (an HF causal-LM directory, or a checkpoint to `resume`).
    public var model: URL
    /// JSON lines {"prompt", "completion"} (or `_ids` forms).
    public var data: URL
    /// Checkpoint directory to write (required unless `evalOnly`).
    public var out: URL?
    /// Print the loss over the whole data file without training.
    public var evalOnly = false
    /// Continue the run whose checkpoint `model` is (weights, optimizer state, step, data order).
    public var resume = false
    public var run = RunOptions()
    /// TRL SFTConfig's default learning rate, 2e-5.
    public var optimizer = OptimizerOptions(lr: 2e-5)
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Train (or evaluate) a LoRA adapter on the frozen base `model` instead of every parameter.
    public var lora: LoRAJobOptions?

    public init(model: URL, data: URL, out: URL?) { self.model = model; self.data = data; self.out = out }
}

/// Supervised fine-tuning.
public enum SFTJob {
    /// Runs the job. Returns the evaluation JSON line (`evalOnly`) or a one-line summary.
    public static func run(_ o: SFTOptions, progress: TrainingProgressHandler = { _ in .proceed }) throws -> String {
        try o.run.validate(); try o.optimizer.validate()
        Threads.configure(o.threads)
        let loaded = try ModelDirectory.load(o.model)
        guard loaded.config.head == .causalLM else {
            throw JobError("\(o.model.path): is a reward / sequence-classification model; sft needs a causal LM")
        }
        let config = loaded.config
        let encoder = try TrainingSupport.textEncoder(modelDirectory: o.model, config: config)
        let examples = try TrainingData.readCompletions(o.data, vocab: config.vocabSize, encoder: encoder)
        try TrainingSupport.checkLengths(examples.map { ($0.prompt.count + $0.completion.count, $0.line) }, config: config, data: o.data)
        let model = LlamaModel(config: config, parameters: loaded.parameters)
        let adapter = try LoRAJobSupport.adapter(o.lora, model: config, seed: o.run.seed)
        if o.evalOnly { return metricsJSON(try evaluate(model: model, adapter: adapter, examples: examples, batchSize: o.run.batchSize)) }
        guard let out = o.out else { throw JobError("--out is required unless --eval-only") }

        let plan = TrainingPlan(examples: examples.count, run: o.run)
        let resumed = o.resume
            ? try LoRAJobSupport.resumeState(o.lora, job: "sft", model: o.model, plan: plan, adapter: adapter,
                                             fullLayout: model.layout, optimizer: o.optimizer)
            : nil
        let maxLen = examples.map { $0.prompt.count + $0.completion.count }.max() ?? 1
        let ws = LlamaWorkspace(config: config, maxBatch: min(o.run.batchSize, examples.count), maxSeqLen: maxLen)
        let lora = adapter.map { LoRAActivations(adapter: $0, maxRows: ws.maxRows) }
        let pad = config.batchPadID
        let spec = TrainingSupport.RunSpec(job: "sft", model: o.model, reference: nil, data: o.data, out: out, config: config,
                                           lines: examples.map(\.line), run: o.run, optimizer: o.optimizer, dpo: nil)
        return try TrainingSupport.train(spec, model: model, adapter: adapter, plan: plan, resumed: resumed, progress: progress) { micro, trainer in
            let ex = micro.map { $0.map { examples[$0] } }
            let tokens = ex.joined().reduce(0) { $0 + $1.completion.count }  // the step's normaliser
            return .init(microBatches: ex.count, run: { i in
                let b = batch(ex[i], pad: pad)
                let out = try model.forward(b, workspace: ws, lora: lora)
                let loss = SFTLoss.compute(logprobs: out, batch: b, denominator: tokens)
                guard loss.loss.isFinite else { return loss.loss }
                loss.outputGradient.withUnsafeBufferPointer {
                    trainer.backward(b, outputGradient: $0, workspace: ws, lora: lora)
                }
                return loss.loss
            }, metrics: { [("completion_tokens", Double(tokens))] })
        }
    }

    /// `loss` (token-level mean NLL of the completions) and `completion_tokens` over `examples`, in
    /// micro-batches of `batchSize` (the result is that of one batch holding every example).
    public static func evaluate(model: LlamaModel, adapter: LoRAAdapter? = nil, examples: [CompletionExample],
                                batchSize: Int) throws -> [(String, Double)] {
        let bs = max(1, min(batchSize, examples.count))
        let maxLen = examples.map { $0.prompt.count + $0.completion.count }.max() ?? 1
        let ws = LlamaWorkspace(config: model.config, maxBatch: bs, maxSeqLen: maxLen)
        let lora = adapter.map { LoRAActivations(adapter: $0, maxRows: ws.maxRows) }
        let pad = model.config.batchPadID
        var nll = 0.0, tokens = 0
        for lo in stride(from: 0, to: examples.count, by: bs) {
            let b = batch(Array(examples[lo..<min(examples.count, lo + bs)]), pad: pad)
            let out = try model.forward(b, workspace: ws, lora: lora)
            let (sums, counts) = DPOLoss.sequenceLogps(output: out, batch: b)
            nll -= sums.reduce(0, +)
            tokens += counts.reduce(0, +)
        }
        return [("loss", nll / Double(max(1, tokens))), ("completion_tokens", Double(tokens))]
    }

    /// Rows prompt + completion, scored from the first completion token.
    public static func batch(_ examples: [CompletionExample], pad: Int32) -> TokenBatch {
        TokenBatch(rows: examples.map { $0.prompt + $0.completion }, pad: pad, scoreFrom: examples.map(\.prompt.count))
    }
}
