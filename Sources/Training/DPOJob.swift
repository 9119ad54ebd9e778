// `rondo dpo`: offline Direct Preference Optimisation as TRL's `DPOTrainer` does it
// (`_compute_loss`; losses and metrics in Losses.swift), with the HF Trainer's AdamW, schedule and
// clipping. Batches are [prompt+chosen_0..K−1, prompt+rejected_0..K−1]; log-probs are summed over
// completion tokens.
//
// The reference log-probs are computed once per example before training, forward only, in the
// training workspace (TRL's `precompute_ref_log_probs=True`; the values equal TRL's default of
// running the frozen reference every step, because the reference never changes). The reference
// weights are released before training starts.

import Foundation
import Kernels
import Model

/// Options of a DPO run.
public struct DPOOptions: Sendable {
    /// The policy to train (an HF causal-LM directory, or a checkpoint to `resume`).
    public var model: URL
    /// The frozen reference; nil = the starting policy (or, on resume, the run's recorded reference).
    public var reference: URL?
    /// JSON lines {"prompt", "chosen", "rejected"} (or `_ids` forms).
    public var data: URL
    /// Checkpoint directory to write (required unless `evalOnly`).
    public var out: URL?
    /// Print loss and metrics over the whole data file without training.
    public var evalOnly = false
    /// Continue the run whose checkpoint `model` is.
    public var resume = false
    public var loss = DPOLossConfig()
    public var run = RunOptions()
    /// TRL DPOConfig's default learning rate, 1e-6.
    public var optimizer = OptimizerOptions(lr: 1e-6)
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Train (or evaluate) a LoRA adapter on the frozen base `model`; the reference is then the base
    /// with the adapter off unless `reference` is given.
    public var lora: LoRAJobOptions?

    public init(model: URL, data: URL, out: URL?) { self.model = model; self.data = data; self.out = out }
}

/// Offline DPO.
public enum DPOJob {
    /// Runs the job. Returns the evaluation JSON line (`evalOnly`) or a one-line summary.
    public static func run(_ o: DPOOptions, progress: TrainingProgressHandler = { _ in .proceed }) throws -> String {
        try o.run.validate(); try o.optimizer.validate(); try o.loss.validate()
        Threads.configure(o.threads)
        let loaded = try ModelDirectory.load(o.model)
        let config = loaded.config
        guard config.head == .causalLM else {
            throw JobError("\(o.model.path): is a reward / sequence-classification model; dpo needs a causal LM policy")
        }
        let encoder = try TrainingSupport.textEncoder(modelDirectory: o.model, config: config)
        let examples = try TrainingData.readPreferences(o.data, vocab: config.vocabSize, encoder: encoder)
        try TrainingSupport.checkLengths(examples.map { ($0.prompt.count + max($0.chosen.count, $0.rejected.count), $0.line) },
                                         config: config, data: o.data)
        let model = LlamaModel(config: config, parameters: loaded.parameters)
        let adapter = try LoRAJobSupport.adapter(o.lora, model: config, seed: o.run.seed)
        let plan = TrainingPlan(examples: examples.count, run: o.run)
        var resumed: ResumeState?
        if o.resume && !o.evalOnly {
            let r = try LoRAJobSupport.resumeState(o.lora, job: "dpo", model: o.model, plan: plan, adapter: adapter,
                                                   fullLayout: model.layout, optimizer: o.optimizer)
            guard r.record.dpo == o.loss else {
                throw JobError("\(o.model.path): resume with the same DPO loss options as the interrupted run (see its \(TrainingRecord.fileName))")
            }
            resumed = r
        }
        let referenceURL = o.reference ?? resumed?.record.reference.map { URL(fileURLWithPath: $0) } ?? o.model
        let bs = max(1, min(o.run.batchSize, examples.count))
        let maxLen = examples.map { $0.prompt.count + max($0.chosen.count, $0.rejected.count) }.max() ?? 1
        let ws = LlamaWorkspace(config: config, maxBatch: 2 * bs, maxSeqLen: maxLen)
        let pad = config.batchPadID
        // With an adapter the model is the frozen base, so "the policy without its adapter" is exact on resume too.
        let refLogps = try referenceLogps(examples, reference: referenceURL, policy: model,
                                          isPolicy: referenceURL == o.model && (!o.resume || adapter != nil),
                                          batchSize: bs, workspace: ws, pad: pad)
        let lora = adapter.map { LoRAActivations(adapter: $0, maxRows: ws.maxRows) }
        if o.evalOnly {
            return metricsJSON(try evaluate(model: model, lora: lora, examples: examples, referenceLogps: refLogps, config: o.loss,
                                            batchSize: bs, workspace: ws))
        }
        guard let out = o.out else { throw JobError("--out is required unless --eval-only") }

        let spec = TrainingSupport.RunSpec(job: "dpo", model: o.model, reference: referenceURL, data: o.data, out: out,
                                           config: config, lines: examples.map(\.line), run: o.run, optimizer: o.optimizer,
                                           dpo: o.loss)
        return try TrainingSupport.train(spec, model: model, adapter: adapter, plan: plan, resumed: resumed, progress: progress) { micro, trainer in
            let pairs = micro.reduce(0) { $0 + $1.count }  // the step's normaliser
            var metrics = DPOMetrics()
            return .init(microBatches: micro.count, run: { i in
                let b = batch(micro[i].map { examples[$0] }, pad: pad)
                let out = try model.forward(b, workspace: ws, lora: lora)
                let loss = DPOLoss.compute(policyOutput: out, batch: b, referenceLogps: rows(micro[i], refLogps),
                                           config: o.loss, pairsInStep: pairs, metrics: &metrics)
                guard loss.loss.isFinite else { return loss.loss }
                loss.outputGradient.withUnsafeBufferPointer {
                    trainer.backward(b, outputGradient: $0, workspace: ws, lora: lora)
                }
                return loss.loss
            }, metrics: { Array(metrics.values.dropFirst()) })
        }
    }

    /// Summed completion log-probs of every example under the reference, [chosen, rejected] per
    /// example, forward only in `workspace`. `isPolicy` reuses `policy`'s weights (the default
    /// reference is the starting policy); otherwise the reference directory is loaded and released.
    static func referenceLogps(_ examples: [PreferenceExample], reference: URL, policy: LlamaModel, isPolicy: Bool,
                               batchSize bs: Int, workspace ws: LlamaWorkspace, pad: Int32) throws -> [(Double, Double)] {
        let ref: LlamaModel
        if isPolicy {
            ref = policy
        } else {
            let r = try ModelDirectory.load(reference)
            guard r.config.head == .causalLM, r.config.vocabSize == policy.config.vocabSize else {
                throw JobError("\(reference.path): the reference must be a causal LM with the policy's vocabulary (\(policy.config.vocabSize) tokens)")
            }
            ref = LlamaModel(config: r.config, parameters: r.parameters)
        }
        var out: [(Double, Double)] = []
        out.reserveCapacity(examples.count)
        for lo in stride(from: 0, to: examples.count, by: bs) {
            let group = Array(examples[lo..<min(examples.count, lo + bs)])
            let b = batch(group, pad: pad)
            let sums = DPOLoss.sequenceLogps(output: try ref.forward(b, workspace: ws), batch: b).sums
            for k in 0..<group.count { out.append((sums[k], sums[k + group.count])) }
        }
        return out
    }

    /// TRL's `loss` and reward metrics over every pair of `examples` as one batch (computed in
    /// micro-batches of `batchSize` pairs), plus `grad_norm`: the norm of that loss's gradient.
    /// With `lora`, the policy is the base with that adapter on and `grad_norm` is the adapter's.
    public static func evaluate(model: LlamaModel, lora: LoRAActivations? = nil, examples: [PreferenceExample],
                                referenceLogps: [(Double, Double)], config: DPOLossConfig, batchSize: Int,
                                workspace: LlamaWorkspace? = nil) throws -> [(String, Double)] {
        let bs = max(1, min(batchSize, examples.count))
        let maxLen = examples.map { $0.prompt.count + max($0.chosen.count, $0.rejected.count) }.max() ?? 1
        let ws = workspace ?? LlamaWorkspace(config: model.config, maxBatch: 2 * bs, maxSeqLen: maxLen)
        let pad = model.config.batchPadID
        let grads = ParameterBuffer(layout: lora?.adapter.layout ?? model.layout)
        var metrics = DPOMetrics()
        for lo in stride(from: 0, to: examples.count, by: bs) {
            let idx = Array(lo..<min(examples.count, lo + bs))
            let b = batch(idx.map { examples[$0] }, pad: pad)
            let out = try model.forward(b, workspace: ws, lora: lora)
            let loss = DPOLoss.compute(policyOutput: out, batch: b, referenceLogps: rows(idx, referenceLogps), config: config,
                                       pairsInStep: examples.count, metrics: &metrics)
            loss.outputGradient.withUnsafeBufferPointer {
                if lora != nil {
                    model.backward(b, outputGradient: $0, gradients: nil, lora: lora, loraGradients: grads, workspace: ws)
                } else {
                    model.backward(b, outputGradient: $0, gradients: grads, workspace: ws)
                }
            }
        }
        return metrics.values + [("grad_norm", Double(GradientClipping.norm(grads.base, count: grads.count)))]
    }

    /// Reference sums in batch-row order [chosen…, rejected…] for the examples `idx`.
    static func rows(_ idx: [Int], _ ref: [(Double, Double)]) -> [Double] { idx.map { ref[$0].0 } + idx.map { ref[$0].1 } }

    /// Rows [prompt+chosen_0..K−1, prompt+rejected_0..K−1], scored from the first completion token.
    public static func batch(_ examples: [PreferenceExample], pad: Int32) -> TokenBatch {
        TokenBatch(rows: examples.map { $0.prompt + $0.chosen } + examples.map { $0.prompt + $0.rejected }, pad: pad,
                   scoreFrom: examples.map(\.prompt.count) + examples.map(\.prompt.count))
    }
}
