// What the training jobs (SFT, reward model, DPO) share — the parts of the HF `Trainer` loop
// (transformers `Trainer._inner_training_loop`) they have in common: the seeded example order,
// gradient accumulation, global-norm clipping, the scheduled AdamW step, refusal of non-finite
// steps, `metrics.jsonl`, checkpoints and exact resume.
//
// Step plan: an epoch visits every example once in a seeded order; an optimizer step takes the
// next `batchSize · gradAccum` examples (the last step of an epoch may take fewer) as up to
// `gradAccum` micro-batches of `batchSize`. Losses are normalised over the whole optimizer step
// (tokens for SFT, pairs for DPO and reward models), so 1 × 8 and 8 × 1 compute the same gradient.
//
// Checkpoint directory (`--out`): config.json, model.safetensors and the tokenizer files (an HF
// model directory), optimizer.safetensors (AdamW moments and step), metrics.jsonl (one line per
// optimizer step) and training_args.json (the resolved options and the plan), written last.
// `--resume` continues from such a directory bit for bit: same weights, moments, step, schedule
// and example order. Logged `learning_rate` is the rate the step's update used (HF logs the rate
// after its scheduler has stepped, i.e. the next step's).

import Foundation
import Kernels
import Model

/// Optimizer, schedule and clipping settings.
public struct OptimizerOptions: Codable, Sendable, Equatable {
    /// Peak learning rate.
    public var lr: Double
    /// Shape of the learning-rate schedule.
    public var schedule: LRScheduleKind = .linear
    /// Linear warm-up steps at the start of the schedule.
    public var warmupSteps: Int = 0
    /// Global gradient-norm clip (HF `max_grad_norm`); 0 turns clipping off.
    public var maxGradNorm: Double = 1.0
    /// AdamW betas, eps and weight decay.
    public var adamw = AdamWConfig()

    public init(lr: Double) { self.lr = lr }

    /// Cross-field checks (NaN fails every range). `name` spells a setting (`lr`, `warmup_steps`,
    /// `max_grad_norm`, `weight_decay`) the way the caller's users know it: CLI flags by default.
    public func validate(name: (String) -> String = { $0 == "lr" ? "--lr" : DPOLossConfig.flag($0) }) throws {
        guard lr >= 0, lr.isFinite else { throw JobError("\(name("lr")) must be a non-negative number, got \(lr)") }
        guard warmupSteps >= 0 else { throw JobError("\(name("warmup_steps")) must be ≥ 0") }
        guard maxGradNorm >= 0 else { throw JobError("\(name("max_grad_norm")) must be ≥ 0 (0 turns clipping off), got \(maxGradNorm)") }
        guard adamw.weightDecay >= 0 else { throw JobError("\(name("weight_decay")) must be ≥ 0, got \(adamw.weightDecay)") }
        try adamw.validate()
    }
}

/// How examples are batched and for how long training runs.
public struct RunOptions: Codable, Sendable, Equatable {
    /// Passes over the data.
    public var epochs: Int = 1
    /// Examples (SFT) or pairs (DPO, reward model) per forward/backward micro-batch.
    public var batchSize: Int = 8
    /// Micro-batches accumulated into one optimizer step.
    public var gradAccum: Int = 1
    /// Seed of the example order (and of a fresh reward head).
    public var seed: UInt64 = 42
    /// Shuffle the examples every epoch; false keeps file order.
    public var shuffle: Bool = true
    /// End the run after this global optimizer step (the schedule still spans the whole run, so
    /// `--resume` continues it exactly).
    public var stopAtStep: Int? = nil

    public init() {}

    /// Cross-field checks. `name` spells a setting (`epochs`, `batch_size`, …) for the caller's users.
    public func validate(name: (String) -> String = DPOLossConfig.flag) throws {
        guard epochs >= 1 else { throw JobError("\(name("epochs")) must be at least 1") }
        guard batchSize >= 1 else { throw JobError("\(name("batch_size")) must be at least 1") }
        guard gradAccum >= 1 else { throw JobError("\(name("grad_accum")) must be at least 1") }
        if let s = stopAtStep, s < 1 { throw JobError("\(name("stop_at_step")) must be at least 1") }
    }
}

/// Which examples each optimizer step uses.
public final class TrainingPlan: @unchecked Sendable {
    /// Examples in the data set.
    public let examples: Int
    /// Batching, epochs, seed and stop step.
    public let run: RunOptions
    /// Optimizer steps per pass over the data.
    public let stepsPerEpoch: Int
    /// Optimizer steps of the whole run (the schedule's horizon).
    public var totalSteps: Int { stepsPerEpoch * run.epochs }
    /// The step after which this run ends (`stopAtStep`, capped at `totalSteps`).
    public var lastStep: Int { min(totalSteps, run.stopAtStep ?? totalSteps) }
    private var cachedEpoch = -1
    private var cachedOrder: [Int] = []

    public init(examples: Int, run: RunOptions) {
        self.examples = examples
        self.run = run
        let perStep = run.batchSize * run.gradAccum
        stepsPerEpoch = max(1, (examples + perStep - 1) / perStep)
    }

    /// The example order of `epoch`: a Fisher–Yates shuffle driven by Philox(seed, epoch), or file order.
    public func order(epoch: Int) -> [Int] {
        var idx = Array(0..<examples)
        guard run.shuffle, examples > 1 else { return idx }
        let rng = Philox(seed: run.seed, stream: 0x5348_5546_0000_0000 | UInt64(epoch))
        for i in stride(from: examples - 1, to: 0, by: -1) {
            let (a, b, _, _) = rng.block(UInt64(i))
            let j = Int((UInt64(a) << 32 | UInt64(b)) % UInt64(i + 1))
            idx.swapAt(i, j)
        }
        return idx
    }

    /// Example indices of optimizer step `step` (0-based), split into micro-batches.
    public func microBatches(step: Int) -> [[Int]] {
        let epoch = step / stepsPerEpoch, within = step % stepsPerEpoch
        if epoch != cachedEpoch { cachedOrder = order(epoch: epoch); cachedEpoch = epoch }
        let perStep = run.batchSize * run.gradAccum
        let lo = within * perStep, hi = min(examples, lo + perStep)
        return stride(from: lo, to: hi, by: run.batchSize).map { Array(cachedOrder[$0..<min(hi, $0 + run.batchSize)]) }
    }

    /// Epochs completed after optimizer step `step` (0-based), as a fraction (HF's `epoch` log field).
    public func epoch(afterStep step: Int) -> Double { Double(step + 1) / Double(stepsPerEpoch) }

    /// The step loop every training run shares (the offline jobs, DPO, PPO and the campaign's rounds):
    /// optimizer steps `first`..<`lastStep`, each given its micro-batches; `body` runs the step (forward,
    /// loss, backward, `Trainer.step`/`apply`) and answers whether to go on. A stop request is honoured
    /// between optimizer steps, never inside one. Returns true when every planned step ran.
    @discardableResult
    public func runSteps(from first: Int = 0, _ body: (_ step: Int, _ microBatches: [[Int]]) throws -> TrainingControl) rethrows -> Bool {
        for s in first..<max(first, lastStep) {
            if try body(s, microBatches(step: s)) == .stop { return s + 1 == lastStep }
        }
        return true
    }
}

/// What one optimizer step did.
public struct StepStats: Sendable {
    /// The step number after the update (1-based, torch's `state["step"]`).
    public var step: Int
    /// The loss of the whole step (sum over micro-batches of their normalised losses).
    public var loss: Double
    /// Global gradient norm before clipping.
    public var gradNorm: Float
    /// Learning rate the update used.
    public var learningRate: Double
}

/// A model under training: gradients, AdamW state, schedule and clipping. Either every parameter
/// of `model` trains, or (`adapter` set) only a LoRA adapter on the frozen base `model`.
public final class Trainer: @unchecked Sendable {
    /// The model: updated in place, or the frozen base of `adapter`.
    public let model: LlamaModel
    /// The LoRA adapter under training (nil: full fine-tuning).
    public let adapter: LoRAAdapter?
    /// What the optimizer updates: the adapter's weights, or the model's parameters.
    public var trainable: ParameterBuffer { adapter?.weights ?? model.parameters }
    /// Gradient accumulator (the layout of `trainable`); zero between steps.
    public let gradients: ParameterBuffer
    /// AdamW moments and step count.
    public let optimizer: AdamW
    /// Learning rate per optimizer step.
    public let schedule: LRSchedule
    /// Global gradient-norm clip; 0 turns clipping off.
    public let maxGradNorm: Double

    /// Backward of the last forward (`model.forward(…, lora:)`) into `gradients`: the adapter's only
    /// when a LoRA trains (no base-weight product runs), else every parameter's.
    public func backward(_ batch: TokenBatch, outputGradient: UnsafeBufferPointer<Float>, workspace ws: LlamaWorkspace,
                         lora: LoRAActivations?) {
        if let lora {
            model.backward(batch, outputGradient: outputGradient, gradients: nil, lora: lora, loraGradients: gradients, workspace: ws)
        } else {
            model.backward(batch, outputGradient: outputGradient, gradients: gradients, workspace: ws)
        }
    }

    public init(model: LlamaModel, adapter: LoRAAdapter? = nil, optimizer: AdamW, schedule: LRSchedule, maxGradNorm: Double) {
        let layout = adapter?.layout ?? model.layout
        require(optimizer.expAvg.count == layout.count, "optimizer state does not match the trained parameters")
        self.model = model
        self.adapter = adapter
        self.gradients = ParameterBuffer(layout: layout)
        self.optimizer = optimizer
        self.schedule = schedule
        self.maxGradNorm = maxGradNorm
    }

    /// One optimizer step: `body(i)` runs micro-batch i (forward, loss, backward into `gradients`)
    /// and returns its loss contribution — or a non-finite loss without running backward. A
    /// non-finite loss or gradient norm refuses the update (the weights stay as they were) and
    /// throws, naming `context`.
    public func step(microBatches n: Int, context: @autoclosure () -> String, _ body: (Int) throws -> Float) throws -> StepStats {
        var loss = 0.0
        for i in 0..<n {
            let l = try body(i)
            guard l.isFinite else {
                gradients.zero()
                throw JobError("\(context()): the loss is \(l.isNaN ? "NaN" : "\(l)"); the update was refused and no weights were written. Lower the learning rate (--lr; algorithm.learning_rate in a campaign), or check those examples")
            }
            loss += Double(l)
        }
        return try apply(loss: loss, context: context())
    }

    /// The update after the gradients of one step are accumulated in `gradients`: refuses a
    /// non-finite gradient norm (throws, naming `context`), clips, steps AdamW, zeroes the gradients.
    public func apply(loss: Double, context: @autoclosure () -> String) throws -> StepStats {
        let norm = GradientClipping.norm(gradients.base, count: gradients.count)
        guard norm.isFinite else {
            gradients.zero()
            throw JobError("\(context()): the gradient norm is \(norm.isNaN ? "NaN" : "\(norm)") (a gradient overflowed or is NaN); the update was refused and no weights were written. Lower the learning rate (--lr; algorithm.learning_rate in a campaign), or check those examples")
        }
        let coef = maxGradNorm > 0 ? GradientClipping.coefficient(norm: norm, maxNorm: Float(maxGradNorm)) : 1
        let lr = schedule.lr(step: optimizer.step)
        optimizer.update(parameters: trainable, gradients: gradients, lr: lr, gradScale: coef, zeroGradients: true)
        return StepStats(step: optimizer.step, loss: loss, gradNorm: norm, learningRate: lr)
    }
}

/// Progress of a training run, reported after every optimizer step.
public struct TrainingProgress: Sendable, CustomStringConvertible {
    /// Optimizer steps done (1-based).
    public var step: Int
    /// Optimizer steps of the whole run.
    public var totalSteps: Int
    /// Epochs done, as a fraction.
    public var epoch: Double
    /// Loss of this step.
    public var loss: Double
    /// Mean wall time per step of this run so far.
    public var secondsPerStep: Double

    public var description: String {
        "step \(step)/\(totalSteps) · epoch \(String(format: "%.2f", epoch)) · loss \(String(format: "%.4f", loss)) · \(String(format: "%.2f", secondsPerStep)) s/step"
    }
}

/// What a progress handler asks the run to do next.
public enum TrainingControl: Sendable {
    /// Go on.
    case proceed
    /// Stop after this step and write the checkpoint.
    case stop
}

/// Called after every optimizer step.
public typealias TrainingProgressHandler = (TrainingProgress) -> TrainingControl

/// The resolved settings and plan of a run, written as `training_args.json`.
public struct TrainingRecord: Codable, Sendable {
    /// `sft`, `rm` or `dpo`.
    public var job: String
    public var model: String
    public var reference: String?
    public var data: String
    public var examples: Int
    public var step: Int
    public var totalSteps: Int
    public var run: RunOptions
    public var optimizer: OptimizerOptions
    public var dpo: DPOLossConfig?
    /// The adapter's config when a LoRA trained (`model` is then its frozen base).
    public var lora: LoRAConfig?

    static let fileName = "training_args.json"

    enum CodingKeys: String, CodingKey {
        case job, model, reference, data, examples, step, run, optimizer, dpo, lora
        case totalSteps = "total_steps"
    }

    static func load(from dir: URL) throws -> TrainingRecord {
        let url = dir.appendingPathComponent(fileName)
        do { return try JSONDecoder().decode(TrainingRecord.self, from: Data(contentsOf: url)) } catch {
            throw JobError("\(url.path): cannot read the training record (\(error.localizedDescription)); --resume needs a directory written by a Rondo training run")
        }
    }
}

/// What a resumed run continues from.
struct ResumeState {
    let optimizer: AdamW
    let record: TrainingRecord
    let log: MetricsLog
}

/// One JSON line per optimizer step.
struct MetricsLog {
    static let fileName = "metrics.jsonl"
    var lines: [String] = []

    /// The log of the run being resumed from `dir` (empty if it has none).
    static func previous(in dir: URL) -> MetricsLog {
        let text = (try? String(contentsOf: dir.appendingPathComponent(fileName), encoding: .utf8)) ?? ""
        return MetricsLog(lines: text.split(separator: "\n").map(String.init))
    }

    mutating func append(step: Int, epoch: Double, _ metrics: [(String, Double)]) {
        lines.append(jsonObject([("step", "\(step)"), ("epoch", jsonNumber(Float(epoch)))] +
                                metrics.map { ($0.0, jsonNumber(Float($0.1))) }))
    }

    func write(to dir: URL) throws {
        try AtomicFile.write(Data(lines.map { $0 + "\n" }.joined().utf8), to: dir.appendingPathComponent(Self.fileName))
    }
}

/// `{"k": v, ...}` from already-encoded JSON values, in the given order.
func jsonObject(_ fields: [(String, String)]) -> String {
    "{" + fields.map { "\(jsonString($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
}

/// Metrics as one JSON object, numbers as float32 shortest decimals.
func metricsJSON(_ metrics: [(String, Double)]) -> String {
    jsonObject(metrics.map { ($0.0, jsonNumber(Float($0.1))) })
}

/// Helpers the jobs share.
enum TrainingSupport {
    /// The model's tokenizer as a `TextEncoder`, or nil when the directory has no tokenizer.json.
    static func textEncoder(modelDirectory dir: URL, config: LlamaConfig) throws -> TextEncoder? {
        try loadTextEncoder(dir, eos: config.eosTokenIDs.first.map(Int32.init))
    }

    /// Refuses sequences longer than the model's positions, naming the data line.
    static func checkLengths(_ lengths: [(length: Int, line: Int)], config: LlamaConfig, data: URL) throws {
        for (len, line) in lengths where len > config.maxPositionEmbeddings {
            throw JobError("\(data.path):\(line): \(len) tokens exceed the model's max_position_embeddings (\(config.maxPositionEmbeddings)); shorten the example")
        }
    }

    /// "step 3 (data lines 4, 9)" for error messages.
    static func context(step: Int, lines: [Int], data: URL) -> String {
        "step \(step) (\(data.lastPathComponent) lines \(lines.sorted().map(String.init).joined(separator: ", ")))"
    }

    /// Writes the checkpoint directory: the HF model, the optimizer state, the metrics log, and the
    /// training record last. Refuses to write non-finite weights.
    static func saveCheckpoint(to out: URL, config: LlamaConfig, trainer: Trainer, auxiliaryFrom source: URL,
                               log: MetricsLog, record: TrainingRecord) throws {
        let p = trainer.trainable
        if !GradientClipping.norm(p.base, count: p.count).isFinite {
            throw JobError("the weights hold NaN or infinite values after step \(trainer.optimizer.step); nothing was written to \(out.path)")
        }
        if let adapter = trainer.adapter {
            try adapter.save(to: out, baseModel: source.standardizedFileURL.path)
        } else {
            try ModelDirectory.save(config: config, parameters: p, to: out, copyingAuxiliaryFilesFrom: source)
        }
        try trainer.optimizer.save(to: out)
        try log.write(to: out)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var data = try enc.encode(record)
        data.append(UInt8(ascii: "\n"))
        try AtomicFile.write(data, to: out.appendingPathComponent(TrainingRecord.fileName))
    }

    /// The state a `--resume` run continues from `dir`, checked against this run's plan.
    static func resumeState(from dir: URL, job: String, plan: TrainingPlan, layout: ParameterLayout,
                            optimizer: OptimizerOptions) throws -> ResumeState {
        let record = try TrainingRecord.load(from: dir)
        guard record.job == job else {
            throw JobError("\(dir.path) was written by '\(record.job)' training; resume it with `rondo \(record.job)`")
        }
        guard record.totalSteps == plan.totalSteps, record.examples == plan.examples else {
            throw JobError("\(dir.path): the interrupted run planned \(record.totalSteps) steps over \(record.examples) examples, this one \(plan.totalSteps) over \(plan.examples); resume with the same --data, --epochs, --batch-size and --grad-accum")
        }
        guard record.optimizer == optimizer, record.run.seed == plan.run.seed, record.run.shuffle == plan.run.shuffle else {
            throw JobError("\(dir.path): resume with the same optimizer options, --seed and shuffling as the interrupted run (see its \(TrainingRecord.fileName))")
        }
        let opt = try AdamW.load(from: dir, layout: layout, config: optimizer.adamw)
        guard opt.step == record.step else {
            throw JobError("\(dir.path): optimizer step \(opt.step) disagrees with \(TrainingRecord.fileName) step \(record.step); the checkpoint is inconsistent")
        }
        guard opt.step < plan.totalSteps else {
            throw JobError("\(dir.path): the run already finished all \(plan.totalSteps) steps")
        }
        return ResumeState(optimizer: opt, record: record, log: MetricsLog.previous(in: dir))
    }

    /// The job-specific part of one optimizer step.
    struct StepWork {
        /// Micro-batches of the step.
        let microBatches: Int
        /// Forward, loss and backward of micro-batch i; returns its loss contribution.
        let run: (Int) throws -> Float
        /// The step's metrics, logged between `loss` and `grad_norm`.
        let metrics: () -> [(String, Double)]
    }

    /// What a training run is, for the shared loop and the training record.
    struct RunSpec {
        let job: String
        let model: URL
        let reference: URL?
        let data: URL
        let out: URL
        let config: LlamaConfig
        /// Data-file line of every example (for error messages).
        let lines: [Int]
        let run: RunOptions
        let optimizer: OptimizerOptions
        let dpo: DPOLossConfig?
    }

    /// The optimizer steps of a run: from the resumed step (or 0) to the plan's last step, then the
    /// checkpoint. `work(micro, trainer)` supplies each step's micro-batches (example indices).
    /// Returns a one-line summary.
    static func train(_ spec: RunSpec, model: LlamaModel, adapter: LoRAAdapter? = nil, plan: TrainingPlan, resumed: ResumeState?,
                      progress: TrainingProgressHandler, work: (_ micro: [[Int]], _ trainer: Trainer) -> StepWork) throws -> String {
        let o = spec.optimizer
        let optimizer = resumed?.optimizer ?? AdamW(layout: adapter?.layout ?? model.layout, config: o.adamw)
        var log = resumed?.log ?? MetricsLog()
        let schedule = LRSchedule(kind: o.schedule, peak: o.lr, warmupSteps: o.warmupSteps, totalSteps: plan.totalSteps)
        let trainer = Trainer(model: model, adapter: adapter, optimizer: optimizer, schedule: schedule, maxGradNorm: o.maxGradNorm)
        let first = optimizer.step
        let started = Date()
        var last: Double?
        try plan.runSteps(from: first) { s, micro in
            let w = work(micro, trainer)
            let stats = try trainer.step(microBatches: w.microBatches,
                                         context: context(step: s + 1, lines: micro.joined().map { spec.lines[$0] }, data: spec.data),
                                         w.run)
            last = stats.loss
            log.append(step: stats.step, epoch: plan.epoch(afterStep: s), [("loss", stats.loss)] + w.metrics() + [
                ("grad_norm", Double(stats.gradNorm)), ("learning_rate", stats.learningRate),
            ])
            let p = TrainingProgress(step: stats.step, totalSteps: plan.totalSteps, epoch: plan.epoch(afterStep: s), loss: stats.loss,
                                     secondsPerStep: Date().timeIntervalSince(started) / Double(s - first + 1))
            return progress(p)
        }
        let record = TrainingRecord(job: spec.job, model: spec.model.standardizedFileURL.path,
                                    reference: spec.reference?.standardizedFileURL.path, data: spec.data.standardizedFileURL.path,
                                    examples: plan.examples, step: optimizer.step, totalSteps: plan.totalSteps, run: spec.run,
                                    optimizer: o, dpo: spec.dpo, lora: adapter?.config)
        try saveCheckpoint(to: spec.out, config: spec.config, trainer: trainer, auxiliaryFrom: spec.model, log: log, record: record)
        let l = last.map { ", last loss \(String(format: "%.4f", $0))" } ?? ""
        return "\(spec.job): trained steps \(first + 1)…\(optimizer.step) of \(plan.totalSteps) in "
            + "\(String(format: "%.1f", Date().timeIntervalSince(started))) s\(l); wrote \(spec.out.path)"
    }
}
