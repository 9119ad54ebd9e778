// What the training and scoring jobs share for LoRA: a new adapter (r, alpha, targets, rsLoRA)
// initialised from the run's seed, or an existing PEFT adapter to continue from or score with,
// and the checks that let `--resume` continue a LoRA run exactly.

import Foundation
import Model

/// The LoRA settings of a job: none (full fine-tuning / the plain model), a new adapter, or an
/// existing PEFT adapter directory.
public struct LoRAJobOptions: Sendable, Equatable {
    /// Train a new adapter of this shape (lora_A drawn from the run's seed, lora_B zero, as PEFT).
    public var new: LoRAConfig?
    /// Continue training (or score with) this PEFT adapter; with `--resume`, the interrupted LoRA run's checkpoint.
    public var adapter: URL?

    public init(new: LoRAConfig? = nil, adapter: URL? = nil) { self.new = new; self.adapter = adapter }
}

enum LoRAJobSupport {
    /// The adapter the job trains or scores with, or nil for the plain model. A new adapter on a
    /// reward model starts its score head from `base`'s (as PEFT's SEQ_CLS task does).
    static func adapter(_ o: LoRAJobOptions?, model: LlamaConfig, seed: UInt64, base: ParameterBuffer? = nil) throws -> LoRAAdapter? {
        guard let o else { return nil }
        if o.new != nil && o.adapter != nil {
            throw JobError("--lora-r starts a new adapter and --adapter continues one; give only one of them")
        }
        if let url = o.adapter {
            do { return try LoRAAdapter.load(from: url, model: model) } catch let e as ModelError { throw JobError(e.description) }
        }
        guard let c = o.new else { return nil }
        let a = LoRAAdapter(config: c, model: model)
        a.initialize(seed: seed)
        if let base { a.initializeScore(from: base) }
        return a
    }

    /// Where `--resume` reads the optimizer state and record: the adapter checkpoint of a LoRA run
    /// (whose `--model` is its base), else the model checkpoint itself.
    static func resumeDirectory(_ o: LoRAJobOptions?, model: URL) throws -> URL {
        if o?.new != nil { throw JobError("--resume continues a LoRA run from its checkpoint: pass it as --adapter DIR, not --lora-r") }
        return o?.adapter ?? model
    }

    /// The state `--resume` continues from: the LoRA run's adapter checkpoint or the model
    /// checkpoint (`resumeDirectory`), checked against `adapter` and the base `model` (`checkResume`).
    static func resumeState(_ o: LoRAJobOptions?, job: String, model: URL, plan: TrainingPlan, adapter: LoRAAdapter?,
                            fullLayout: ParameterLayout, optimizer: OptimizerOptions) throws -> ResumeState {
        let dir = try resumeDirectory(o, model: model)
        let r = try TrainingSupport.resumeState(from: dir, job: job, plan: plan, layout: adapter?.layout ?? fullLayout,
                                                optimizer: optimizer)
        try checkResume(r.record, adapter: adapter, base: model, from: dir)
        return r
    }

    /// Refuses to resume a LoRA run on another base or with another adapter shape, or a full run as LoRA.
    static func checkResume(_ record: TrainingRecord, adapter: LoRAAdapter?, base: URL, from dir: URL) throws {
        guard record.lora == adapter?.config else {
            throw JobError("\(dir.path): the interrupted run trained \(record.lora.map { "a LoRA adapter (r \($0.r))" } ?? "every parameter"); resume it the same way (see its \(TrainingRecord.fileName))")
        }
        if adapter != nil, record.model != base.standardizedFileURL.path {
            throw JobError("\(dir.path): this adapter was trained on the base \(record.model); pass that directory as --model")
        }
    }
}
