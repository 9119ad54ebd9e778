// `rondo rm train`: Bradley–Terry reward-model training as TRL's `RewardTrainer` does it (pairs
// [chosen…, rejected…] in one batch, score pooled at the last non-pad token, loss
// mean −log σ(r_c − r_r), no margin, no reward centering), with the HF Trainer's AdamW, schedule
// and clipping. A causal LM given as `--model` becomes a reward model first, as
// `AutoModelForSequenceClassification.from_pretrained(lm, num_labels=1)` would: same trunk, the LM
// head dropped, a fresh `score.weight` ~ Normal(0, initializer_range). With `lora`, a PEFT LoRA
// adapter trains on the frozen base together with its own copy of the score head (PEFT's SEQ_CLS
// task: `modules_to_save` ["classifier", "score"]), saved in the adapter.

import Foundation
import Kernels
import Model

/// Options of a reward-model run.
public struct RewardOptions: Sendable {
    /// A reward model (`…ForSequenceClassification`, one label) or a causal LM to start from.
    public var model: URL
    /// JSON lines {"chosen", "rejected"} [+ "prompt"] (or `_ids` forms).
    public var data: URL
    /// Checkpoint directory to write (required unless `evalOnly`).
    public var out: URL?
    /// Print loss and accuracy over the whole data file without training.
    public var evalOnly = false
    /// Continue the run whose checkpoint `model` is.
    public var resume = false
    public var run = RunOptions()
    public var optimizer = OptimizerOptions(lr: 1e-5)
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Train (or evaluate) a LoRA adapter on the frozen base `model` instead of every parameter; the
    /// score head trains with it (PEFT's SEQ_CLS `modules_to_save`) and is saved in the adapter.
    public var lora: LoRAJobOptions?

    public init(model: URL, data: URL, out: URL?) { self.model = model; self.data = data; self.out = out }
}

/// Reward-model training.
public enum RewardJob {
    /// Runs the job. Returns the evaluation JSON line (`evalOnly`) or a one-line summary.
    public static func run(_ o: RewardOptions, progress: TrainingProgressHandler = { _ in .proceed }) throws -> String {
        try o.run.validate(); try o.optimizer.validate()
        Threads.configure(o.threads)
        let loaded = try ModelDirectory.load(o.model)
        let (config, params) = loaded.asRewardModel(seed: o.run.seed)
        let encoder = try TrainingSupport.textEncoder(modelDirectory: o.model, config: config)
        let examples = try TrainingData.readPairs(o.data, vocab: config.vocabSize, encoder: encoder)
        try TrainingSupport.checkLengths(examples.map { (max($0.chosen.count, $0.rejected.count), $0.line) },
                                         config: config, data: o.data)
        let model = LlamaModel(config: config, parameters: params)
        let adapter = try LoRAJobSupport.adapter(o.lora, model: config, seed: o.run.seed, base: params)
        if o.evalOnly {
            return metricsJSON(try evaluate(model: model, adapter: adapter, examples: examples, batchSize: o.run.batchSize))
        }
        guard let out = o.out else { throw JobError("--out is required unless --eval-only") }

        let plan = TrainingPlan(examples: examples.count, run: o.run)
        let resumed = o.resume
            ? try LoRAJobSupport.resumeState(o.lora, job: "rm", model: o.model, plan: plan, adapter: adapter,
                                             fullLayout: model.layout, optimizer: o.optimizer)
            : nil
        let maxLen = examples.map { max($0.chosen.count, $0.rejected.count) }.max() ?? 1
        let ws = LlamaWorkspace(config: config, maxBatch: 2 * min(o.run.batchSize, examples.count), maxSeqLen: maxLen)
        let lora = adapter.map { LoRAActivations(adapter: $0, maxRows: ws.maxRows) }
        let spec = TrainingSupport.RunSpec(job: "rm", model: o.model, reference: nil, data: o.data, out: out, config: config,
                                           lines: examples.map(\.line), run: o.run, optimizer: o.optimizer, dpo: nil)
        return try TrainingSupport.train(spec, model: model, adapter: adapter, plan: plan, resumed: resumed, progress: progress) { micro, trainer in
            let ex = micro.map { $0.map { examples[$0] } }
            let pairs = ex.reduce(0) { $0 + $1.count }  // the step's normaliser
            var metrics = RewardMetrics()
            return .init(microBatches: ex.count, run: { i in
                try microBatch(ex[i], model: model, workspace: ws, pairsInStep: pairs, metrics: &metrics, lora: lora) {
                    trainer.backward($0, outputGradient: $1, workspace: ws, lora: lora)
                }
            }, metrics: { Array(metrics.values.dropFirst()) })
        }
    }

    /// One micro-batch of a training step: forward of [chosen…, rejected…], the Bradley–Terry loss
    /// normalised over the step's `pairsInStep` pairs, its rewards into `metrics`, and backward into
    /// `gradients`. Returns the loss; a non-finite one comes back without a backward (Trainer.step
    /// then refuses the update).
    public static func microBatch(_ examples: [PairExample], model: LlamaModel, workspace ws: LlamaWorkspace, pairsInStep: Int,
                                  gradients: ParameterBuffer, metrics: inout RewardMetrics) throws -> Float {
        try microBatch(examples, model: model, workspace: ws, pairsInStep: pairsInStep, metrics: &metrics, lora: nil) {
            model.backward($0, outputGradient: $1, gradients: gradients, workspace: ws)
        }
    }

    /// The same with the forward's LoRA activations (nil: the plain model) and the backward given
    /// (`Trainer.backward`: the adapter's gradients only when a LoRA trains).
    static func microBatch(_ examples: [PairExample], model: LlamaModel, workspace ws: LlamaWorkspace, pairsInStep: Int,
                           metrics: inout RewardMetrics, lora: LoRAActivations?,
                           backward: (TokenBatch, UnsafeBufferPointer<Float>) -> Void) throws -> Float {
        let b = batch(examples, pad: model.config.batchPadID)
        let out = try model.forward(b, workspace: ws, lora: lora)
        let bt = BradleyTerryLoss.compute(scores: out, batch: b, pad: model.config.padTokenID, pairsInStep: pairsInStep)
        metrics.add(BradleyTerryLoss.rewards(scores: out, batch: b, pad: model.config.padTokenID))
        guard bt.result.loss.isFinite else { return bt.result.loss }
        bt.result.outputGradient.withUnsafeBufferPointer { backward(b, $0) }
        return bt.result.loss
    }

    /// `loss`, `accuracy`, `margin`, `rewards/chosen`, `rewards/rejected` over every pair of
    /// `examples` (micro-batches of `batchSize` pairs; the result is that of one batch).
    public static func evaluate(model: LlamaModel, adapter: LoRAAdapter? = nil, examples: [PairExample],
                                batchSize: Int) throws -> [(String, Double)] {
        let bs = max(1, min(batchSize, examples.count))
        let maxLen = examples.map { max($0.chosen.count, $0.rejected.count) }.max() ?? 1
        let ws = LlamaWorkspace(config: model.config, maxBatch: 2 * bs, maxSeqLen: maxLen)
        let lora = adapter.map { LoRAActivations(adapter: $0, maxRows: ws.maxRows) }
        let pad = model.config.batchPadID
        var metrics = RewardMetrics()
        for lo in stride(from: 0, to: examples.count, by: bs) {
            let b = batch(Array(examples[lo..<min(examples.count, lo + bs)]), pad: pad)
            let out = try model.forward(b, workspace: ws, lora: lora)
            metrics.add(BradleyTerryLoss.rewards(scores: out, batch: b, pad: model.config.padTokenID))
        }
        return metrics.values
    }

    /// Rows [chosen_0..K−1, rejected_0..K−1], right-padded with `pad`.
    public static func batch(_ examples: [PairExample], pad: Int32) -> TokenBatch {
        TokenBatch(rows: examples.map(\.chosen) + examples.map(\.rejected), pad: pad)
    }
}

/// Reward-model metrics accumulated over pairs.
public struct RewardMetrics: Sendable {
    public private(set) var pairs = 0, correct = 0
    var loss = 0.0, margin = 0.0, chosen = 0.0, rejected = 0.0

    public init() {}

    mutating func add(_ r: (chosen: [Float], rejected: [Float], index: [Int])) {
        for (c, j) in zip(r.chosen, r.rejected) {
            let d = Double(c) - Double(j)
            pairs += 1
            loss += softplus(-d)
            margin += d
            chosen += Double(c)
            rejected += Double(j)
            if c > j { correct += 1 }
        }
    }

    /// `loss` first, then the metrics.
    public var values: [(String, Double)] {
        let n = Double(max(1, pairs))
        return [("loss", loss / n), ("accuracy", Double(correct) / n), ("margin", margin / n),
                ("rewards/chosen", chosen / n), ("rewards/rejected", rejected / n)]
    }
}
