// Scores responses with a trained reward model (an HF `LlamaForSequenceClassification`
// directory, e.g. written by `rondo rm train`): the score of prompt + response read at the last
// non-pad token, as transformers and TRL's RewardTrainer do. Or a base with a reward-model LoRA
// adapter (`rondo rm train --lora-r`, PEFT's SEQ_CLS task: the score head lives in the adapter).

import Foundation
import Kernels
import Model

public final class RewardModelLabeller: Labeller {
    public let id: String
    let model: LlamaModel
    /// A PEFT LoRA adapter on `model` (with its own score head), on for every forward.
    let adapter: LoRAAdapter?
    let pad: Int32
    let batchSize: Int
    private var workspace: LlamaWorkspace?
    private var lora: LoRAActivations?

    /// Loads the reward model in `directory`; `id` records the hash of its weights.
    public convenience init(directory: URL, weightsSHA256: String, batchSize: Int = 16) throws {
        let loaded = try ModelDirectory.load(directory)
        guard loaded.config.head == .score else {
            throw LabelError("\(directory.path): not a reward model (architectures must be *ForSequenceClassification with score.weight); train one with `rondo rm train`")
        }
        self.init(model: LlamaModel(config: loaded.config, parameters: loaded.parameters), weightsSHA256: weightsSHA256,
                  batchSize: batchSize)
    }

    /// Loads the base `directory` (a reward model, or a causal LM whose head the adapter replaces)
    /// with the reward-model adapter `adapter` written by `rondo rm train --lora-r` (task_type
    /// SEQ_CLS: LoRA weights and the trained score head), scoring as that run's forward did.
    public convenience init(directory: URL, adapter: URL, weightsSHA256: String, batchSize: Int = 16) throws {
        // A causal LM's head is dropped; the fresh score head this draws is never read (the adapter has its own).
        let (config, parameters) = try ModelDirectory.load(directory).asRewardModel(seed: 0)
        let lora: LoRAAdapter
        do { lora = try LoRAAdapter.load(from: adapter, model: config) } catch let e as ModelError { throw LabelError(e.description) }
        self.init(model: LlamaModel(config: config, parameters: parameters), adapter: lora, weightsSHA256: weightsSHA256,
                  batchSize: batchSize)
    }

    /// Scores with `model` (a one-label reward model in memory, e.g. a campaign's refreshed one),
    /// with `adapter` on if given.
    public init(model: LlamaModel, adapter: LoRAAdapter? = nil, weightsSHA256: String, batchSize: Int = 16) {
        precondition(model.config.head == .score, "RewardModelLabeller needs a sequence-classification model")
        self.model = model
        self.adapter = adapter
        pad = model.config.batchPadID
        self.batchSize = max(1, batchSize)
        id = "reward_model:\(weightsSHA256.prefix(12))"
    }

    public func score(_ r: LabelRequest) throws -> [Float] {
        let rows = r.responseIDs.map { r.promptIDs + $0 }
        let maxLen = rows.map(\.count).max() ?? 1
        if workspace == nil || workspace!.maxSeqLen < maxLen {
            workspace = LlamaWorkspace(config: model.config, maxBatch: batchSize, maxSeqLen: max(maxLen, 64))
            lora = adapter.map { LoRAActivations(adapter: $0, maxRows: workspace!.maxRows) }
        }
        let ws = workspace!
        var scores: [Float] = []
        var start = 0
        while start < rows.count {
            let group = Array(rows[start..<min(rows.count, start + batchSize)])
            let batch = TokenBatch(rows: group, pad: pad)
            let out = try model.forward(batch, workspace: ws, lora: lora)
            for b in 0..<batch.batch {
                scores.append(out[b * batch.seqLen + batch.lastNonPadIndex(row: b, pad: model.config.padTokenID)])
            }
            start += batchSize
        }
        return scores
    }
}
