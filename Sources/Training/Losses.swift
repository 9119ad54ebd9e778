// Losses on top of the model's per-position outputs, each returning dL/d(output) for
// `LlamaModel.backward` — the single interface SFT, reward modelling, DPO and PPO share.
//
// SFT (HF `ForCausalLMLoss`, TRL SFTTrainer): token-level mean cross-entropy over every scored
//   target in the batch, loss = −Σ logp / N_tokens (not a mean of per-sequence means).
// Bradley–Terry (TRL RewardTrainer): rows [chosen_0..K−1, rejected_0..K−1];
//   loss = mean_k −log σ(r_chosen_k − r_rejected_k), with r read at the last non-pad token.

import Foundation
import Model

/// The result of a loss: its value and the gradient to feed into `LlamaModel.backward`.
public struct LossResult {
    public var loss: Float
    public var outputGradient: [Float]
}

/// Supervised fine-tuning loss.
public enum SFTLoss {
    /// Mean negative log-likelihood of the scored targets in `batch` (from `scoreFrom` to `lengths`).
    public static func compute(logprobs: UnsafeBufferPointer<Float>, batch: TokenBatch) -> LossResult {
        let T = batch.seqLen
        var count = 0
        for b in 0..<batch.batch { count += max(0, batch.lengths[b] - max(1, batch.scoreFrom[b])) }
        var grad = [Float](repeating: 0, count: batch.batch * T)
        guard count > 0 else { return LossResult(loss: 0, outputGradient: grad) }
        var sum = 0.0
        let scale = -1 / Float(count)
        for b in 0..<batch.batch {
            for j in max(1, batch.scoreFrom[b])..<max(1, batch.lengths[b]) {
                sum += Double(logprobs[b * T + j])
                grad[b * T + j] = scale
            }
        }
        return LossResult(loss: Float(-sum / Double(count)), outputGradient: grad)
    }
}

/// Bradley–Terry pairwise reward loss.
public enum BradleyTerryLoss {
    /// The position HF's sequence classifier reads: the rightmost token that is not `pad`
    /// (`argmax(arange(T) · (ids != pad))`), or `length − 1` when the model has no pad id.
    public static func scoreIndex(batch: TokenBatch, row b: Int, pad: Int?) -> Int {
        guard let pad else { return batch.lengths[b] - 1 }
        let T = batch.seqLen
        var last = 0
        for t in 0..<T where batch.tokens[b * T + t] != Int32(pad) { last = t }
        return last
    }

    /// Loss, accuracy (strict r_c > r_r) and mean margin over K pairs laid out [chosen…, rejected…].
    public static func compute(scores: UnsafeBufferPointer<Float>, batch: TokenBatch, pad: Int?)
        -> (result: LossResult, accuracy: Float, margin: Float)
    {
        precondition(batch.batch % 2 == 0, "Bradley–Terry batches hold chosen rows then rejected rows")
        let K = batch.batch / 2, T = batch.seqLen
        var grad = [Float](repeating: 0, count: batch.batch * T)
        var loss = 0.0, correct = 0, margin = 0.0
        for k in 0..<K {
            let ic = k * T + scoreIndex(batch: batch, row: k, pad: pad)
            let ir = (k + K) * T + scoreIndex(batch: batch, row: k + K, pad: pad)
            let d = Double(scores[ic]) - Double(scores[ir])
            loss += softplus(-d)  // −log σ(d)
            if scores[ic] > scores[ir] { correct += 1 }
            margin += d
            let g = Float(-1 / (1 + exp(d)) / Double(K))  // d/dd of −log σ(d), averaged
            grad[ic] += g
            grad[ir] -= g
        }
        return (LossResult(loss: Float(loss / Double(K)), outputGradient: grad), Float(correct) / Float(K),
                Float(margin / Double(K)))
    }
}

/// log(1 + e^x), stable for large |x|.
@inline(__always)
func softplus(_ x: Double) -> Double { x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)) }
