// Scores responses with a trained reward model (an HF `LlamaForSequenceClassification`
// directory, e.g. written by `rondo rm train`): the score of prompt + response read at the last
// non-pad token, as transformers and TRL's RewardTrainer do.

import Foundation
import Kernels
import Model

public final class RewardModelLabeller: Labeller {
    public let id: String
    let model: LlamaModel
    let pad: Int32
    let batchSize: Int
    private var workspace: LlamaWorkspace?

    /// Loads the reward model in `directory`; `id` records the hash of its weights.
    public convenience init(directory: URL, weightsSHA256: String, batchSize: Int = 16) throws {
        let loaded = try ModelDirectory.load(directory)
        guard loaded.config.head == .score else {
            throw LabelError("\(directory.path): not a reward model (architectures must be *ForSequenceClassification with score.weight); train one with `rondo rm train`")
        }
        self.init(model: LlamaModel(config: loaded.config, parameters: loaded.parameters), weightsSHA256: weightsSHA256,
                  batchSize: batchSize)
    }

    /// Scores with `model` (a one-label reward model in memory, e.g. a campaign's refreshed one).
    public init(model: LlamaModel, weightsSHA256: String, batchSize: Int = 16) {
        precondition(model.config.head == .score, "RewardModelLabeller needs a sequence-classification model")
        self.model = model
        pad = model.config.batchPadID
        self.batchSize = max(1, batchSize)
        id = "reward_model:\(weightsSHA256.prefix(12))"
    }

    public func score(_ r: LabelRequest) throws -> [Float] {
        let rows = r.responseIDs.map { r.promptIDs + $0 }
        let maxLen = rows.map(\.count).max() ?? 1
        if workspace == nil || workspace!.maxSeqLen < maxLen {
            workspace = LlamaWorkspace(config: model.config, maxBatch: batchSize, maxSeqLen: max(maxLen, 64))
        }
        let ws = workspace!
        var scores: [Float] = []
        var start = 0
        while start < rows.count {
            let group = Array(rows[start..<min(rows.count, start + batchSize)])
            let batch = TokenBatch(rows: group, pad: pad)
            let out = try model.forward(batch, workspace: ws)
            for b in 0..<batch.batch {
                scores.append(out[b * batch.seqLen + batch.lastNonPadIndex(row: b, pad: model.config.padTokenID)])
            }
            start += batchSize
        }
        return scores
    }
}
