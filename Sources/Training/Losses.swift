// Losses on top of the model's per-position outputs, each returning dL/d(output) for
// `LlamaModel.backward` — the single interface SFT, reward modelling, DPO and PPO share.
// Every formula below names its TRL / transformers counterpart (trl 1.16, transformers 5.24).
//
// SFT (HF `ForCausalLMLoss`, TRL `SFTTrainer` on prompt–completion data, completion-only loss):
//   token-level mean cross-entropy over every scored target in the batch,
//   loss = −Σ logp / N_tokens (not a mean of per-sequence means). Under gradient accumulation
//   N_tokens counts the whole optimizer step (transformers' `num_items_in_batch`).
//
// Bradley–Terry (TRL `RewardTrainer.compute_loss`, no margin, no reward centering):
//   rows [chosen_0..K−1, rejected_0..K−1]; r read at the last non-pad token (HF pooling);
//   loss = mean_k −log σ(r_chosen_k − r_rejected_k); accuracy = mean(r_c > r_r); margin = mean(r_c − r_r).
//
// DPO (TRL `DPOTrainer._compute_loss`): rows [chosen_0..K−1, rejected_0..K−1], each sharing its
//   pair's prompt. π_c, π_r, ρ_c, ρ_r are the policy / reference log-probs of the completion
//   tokens, SUMMED over the completion (TRL's `(per_token_logps * completion_mask).sum(1)`).
//   chosen_logratio c = π_c − ρ_c, rejected_logratio r = π_r − ρ_r, d = c − r, β = beta:
//     sigmoid  loss = −log σ(β d)                                       (TRL "sigmoid")
//     ipo      loss = (c/n_c − r/n_r − 1/(2β))²,  n = completion tokens (TRL "ipo": length-normalised)
//     hinge    loss = relu(1 − β d)                                      (TRL "hinge")
//     robust   loss = (−(1−ε) log σ(β d) + ε log σ(−β d)) / (1 − 2ε),  ε = label_smoothing (TRL "robust")
//   and the batch loss is the mean over pairs. In trl 1.16 label_smoothing only enters "robust".
//   NOT TRL: `lengthNormalized` replaces every log-prob by its per-token mean before the formula
//   (π_c/n_c etc.; for sigmoid this is the "length-normalised DPO" of SimPO-style ablations).
//   Metrics, as TRL logs them and for every loss type (always from the SUMMED log-ratios):
//     rewards/chosen = mean β c, rewards/rejected = mean β r, rewards/accuracies = mean(β c > β r),
//     rewards/margins = mean(β c − β r), logps/chosen = mean π_c, logps/rejected = mean π_r.
//   The trainer adds grad_norm (before clipping) and learning_rate.

import Foundation
import Model
import Kernels

/// The result of a loss: its value and the gradient to feed into `LlamaModel.backward`.
public struct LossResult {
    public var loss: Float
    public var outputGradient: [Float]
}

/// Supervised fine-tuning loss.
public enum SFTLoss {
    /// Scored targets of `batch` (from `scoreFrom` to `lengths`).
    public static func tokenCount(_ batch: TokenBatch) -> Int {
        (0..<batch.batch).reduce(0) { $0 + max(0, batch.lengths[$1] - max(1, batch.scoreFrom[$1])) }
    }

    /// −Σ logp / `denominator` over the scored targets of `batch`; `denominator` defaults to the
    /// batch's own token count (pass the optimizer step's total under gradient accumulation).
    public static func compute(logprobs: UnsafeBufferPointer<Float>, batch: TokenBatch, denominator: Int? = nil) -> LossResult {
        let T = batch.seqLen
        let count = denominator ?? tokenCount(batch)
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
        batch.lastNonPadIndex(row: b, pad: pad)
    }

    /// Loss, accuracy (strict r_c > r_r) and mean margin over K pairs laid out [chosen…, rejected…].
    /// The loss and its gradient are divided by `pairsInStep` (default K; pass the optimizer step's
    /// total under gradient accumulation); accuracy and margin are means over this batch's K pairs.
    public static func compute(scores: UnsafeBufferPointer<Float>, batch: TokenBatch, pad: Int?, pairsInStep: Int? = nil)
        -> (result: LossResult, accuracy: Float, margin: Float)
    {
        let r = rewards(scores: scores, batch: batch, pad: pad)
        let K = r.chosen.count, T = batch.seqLen
        let n = Double(pairsInStep ?? K)
        var grad = [Float](repeating: 0, count: batch.batch * T)
        var loss = 0.0, correct = 0, margin = 0.0
        for k in 0..<K {
            let d = Double(r.chosen[k]) - Double(r.rejected[k])
            loss += softplus(-d)  // −log σ(d)
            if r.chosen[k] > r.rejected[k] { correct += 1 }
            margin += d
            let g = Float(-1 / (1 + exp(d)) / n)  // d/dd of −log σ(d), averaged
            grad[k * T + r.index[k]] += g
            grad[(k + K) * T + r.index[k + K]] -= g
        }
        return (LossResult(loss: Float(loss / n), outputGradient: grad), Float(correct) / Float(max(1, K)),
                Float(margin / Double(max(1, K))))
    }

    /// The pooled score of every row: chosen rows [0, K), rejected rows [K, 2K).
    public static func rewards(scores: UnsafeBufferPointer<Float>, batch: TokenBatch, pad: Int?)
        -> (chosen: [Float], rejected: [Float], index: [Int])
    {
        require(batch.batch % 2 == 0, "Bradley–Terry batches hold chosen rows then rejected rows")
        let K = batch.batch / 2, T = batch.seqLen
        let index = (0..<batch.batch).map { scoreIndex(batch: batch, row: $0, pad: pad) }
        let s = index.enumerated().map { scores[$0.offset * T + $0.element] }
        return (Array(s[0..<K]), Array(s[K...]), index)
    }
}

// MARK: - DPO

/// The DPO losses of TRL 1.16 (`DPOConfig.loss_type`).
public enum DPOLossType: String, Codable, Sendable, CaseIterable {
    case sigmoid, ipo, hinge, robust
}

/// Settings of the DPO loss.
public struct DPOLossConfig: Codable, Sendable, Equatable {
    /// Which loss (TRL `loss_type`).
    public var lossType: DPOLossType = .sigmoid
    /// β, the strength of the implicit KL constraint (TRL `beta`).
    public var beta: Double = 0.1
    /// ε of the robust loss (TRL `label_smoothing`; in trl 1.16 only `robust` reads it).
    public var labelSmoothing: Double = 0
    /// NOT TRL: use per-token mean log-probs instead of sums in the loss (rewards stay summed).
    public var lengthNormalized: Bool = false
    /// TRL's `rpo_alpha` (Pang et al. 2024): adds alpha × the mean negative log-likelihood of the
    /// chosen completions' tokens; 0 = plain DPO.
    public var rpoAlpha: Double = 0

    public init(lossType: DPOLossType = .sigmoid, beta: Double = 0.1, labelSmoothing: Double = 0,
                lengthNormalized: Bool = false, rpoAlpha: Double = 0) {
        self.lossType = lossType; self.beta = beta; self.labelSmoothing = labelSmoothing
        self.lengthNormalized = lengthNormalized; self.rpoAlpha = rpoAlpha
    }

    enum CodingKeys: String, CodingKey { case lossType, beta, labelSmoothing, lengthNormalized, rpoAlpha }

    /// Keys missing from older training_args.json files take their defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DPOLossConfig()
        lossType = try c.decodeIfPresent(DPOLossType.self, forKey: .lossType) ?? d.lossType
        beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? d.beta
        labelSmoothing = try c.decodeIfPresent(Double.self, forKey: .labelSmoothing) ?? d.labelSmoothing
        lengthNormalized = try c.decodeIfPresent(Bool.self, forKey: .lengthNormalized) ?? d.lengthNormalized
        rpoAlpha = try c.decodeIfPresent(Double.self, forKey: .rpoAlpha) ?? d.rpoAlpha
    }

    /// A setting's name as `rondo dpo` spells it: `label_smoothing` → `--label-smoothing`.
    public static func flag(_ key: String) -> String { "--" + key.replacingOccurrences(of: "_", with: "-") }

    /// Cross-field checks (NaN fails every range). `name` spells a setting (TRL's snake_case key)
    /// the way the caller's users know it: CLI flags by default; campaigns pass `algorithm.KEY`.
    public func validate(name: (String) -> String = DPOLossConfig.flag) throws {
        guard beta > 0, beta.isFinite else { throw JobError("\(name("beta")) must be a positive finite number, got \(beta)") }
        guard (0..<0.5).contains(labelSmoothing) else {
            throw JobError("\(name("label_smoothing")) must be in [0, 0.5) (the robust loss divides by 1 − 2ε), got \(labelSmoothing)")
        }
        if labelSmoothing != 0 && lossType != .robust {
            throw JobError("\(name("label_smoothing")) only affects \(name("loss_type")) robust (as in trl 1.16, where '\(lossType.rawValue)' ignores it); remove it or use robust")
        }
        guard rpoAlpha >= 0, rpoAlpha.isFinite else { throw JobError("\(name("rpo_alpha")) must be a finite number ≥ 0, got \(rpoAlpha)") }
        if lengthNormalized && lossType == .ipo {
            throw JobError("\(name("length_normalized")) does not apply to ipo, which is already length-normalised")
        }
    }
}

/// Summed completion log-probs of one preference pair under the policy and the reference.
public struct DPOPairLogps: Sendable, Equatable {
    public var policyChosen: Double, policyRejected: Double
    public var referenceChosen: Double, referenceRejected: Double
    /// Completion tokens of the chosen and rejected rows (IPO and length normalisation divide by them).
    public var chosenTokens: Int, rejectedTokens: Int

    public init(policyChosen: Double, policyRejected: Double, referenceChosen: Double, referenceRejected: Double,
                chosenTokens: Int, rejectedTokens: Int) {
        self.policyChosen = policyChosen; self.policyRejected = policyRejected
        self.referenceChosen = referenceChosen; self.referenceRejected = referenceRejected
        self.chosenTokens = chosenTokens; self.rejectedTokens = rejectedTokens
    }
}

/// One pair's loss, its derivatives and TRL's reward metrics.
public struct DPOPairResult: Sendable {
    /// loss_i (before averaging over pairs).
    public var loss: Double
    /// ∂loss_i / ∂π_c and ∂loss_i / ∂π_r (summed policy log-probs).
    public var dPolicyChosen: Double, dPolicyRejected: Double
    /// β · (π_c − ρ_c) and β · (π_r − ρ_r), rounded to float32 as TRL computes them.
    public var chosenReward: Float, rejectedReward: Float
}

/// Direct Preference Optimisation losses.
public enum DPOLoss {
    /// The loss of one pair.
    public static func pair(_ p: DPOPairLogps, _ c: DPOLossConfig) -> DPOPairResult {
        let beta = c.beta
        let chosenRatio = p.policyChosen - p.referenceChosen
        let rejectedRatio = p.policyRejected - p.referenceRejected
        let nc = Double(max(1, p.chosenTokens)), nr = Double(max(1, p.rejectedTokens))
        // d and ∂d/∂π_c, ∂d/∂π_r for the chosen aggregation.
        let norm = c.lengthNormalized || c.lossType == .ipo
        let d = norm ? chosenRatio / nc - rejectedRatio / nr : chosenRatio - rejectedRatio
        let ddc = norm ? 1 / nc : 1, ddr = norm ? -1 / nr : -1
        var loss: Double, dd: Double  // loss_i and ∂loss_i/∂d
        switch c.lossType {
        case .sigmoid:
            loss = softplus(-beta * d)
            dd = -beta * sigmoid(-beta * d)
        case .ipo:
            let e = d - 1 / (2 * beta)
            loss = e * e
            dd = 2 * e
        case .hinge:
            let h = 1 - beta * d
            loss = max(0, h)
            dd = h > 0 ? -beta : 0
        case .robust:
            let eps = c.labelSmoothing
            loss = ((1 - eps) * softplus(-beta * d) - eps * softplus(beta * d)) / (1 - 2 * eps)
            dd = (-(1 - eps) * beta * sigmoid(-beta * d) - eps * beta * sigmoid(beta * d)) / (1 - 2 * eps)
        }
        return DPOPairResult(loss: loss, dPolicyChosen: dd * ddc, dPolicyRejected: dd * ddr,
                             chosenReward: Float(beta * chosenRatio), rejectedReward: Float(beta * rejectedRatio))
    }

    /// Per-row sums of the scored log-probs in `output` (the LM head's forward output) and the
    /// number of scored tokens of each row.
    public static func sequenceLogps(output: UnsafeBufferPointer<Float>, batch: TokenBatch) -> (sums: [Double], tokens: [Int]) {
        let T = batch.seqLen
        var sums = [Double](repeating: 0, count: batch.batch), tokens = [Int](repeating: 0, count: batch.batch)
        for b in 0..<batch.batch {
            for j in max(1, batch.scoreFrom[b])..<max(1, batch.lengths[b]) { sums[b] += Double(output[b * T + j]) }
            tokens[b] = max(0, batch.lengths[b] - max(1, batch.scoreFrom[b]))
        }
        return (sums, tokens)
    }

    /// dL/d(output) of a batch [chosen_0..K−1, rejected_0..K−1]: every scored position of row b
    /// gets ∂L/∂(row sum) (the sum's derivative is 1 for each of its terms).
    public static func outputGradient(batch: TokenBatch, rowGradients: [Double]) -> [Float] {
        let T = batch.seqLen
        var g = [Float](repeating: 0, count: batch.batch * T)
        for b in 0..<batch.batch {
            let v = Float(rowGradients[b])
            for j in max(1, batch.scoreFrom[b])..<max(1, batch.lengths[b]) { g[b * T + j] = v }
        }
        return g
    }

    /// The loss of the pairs of a batch [chosen…, rejected…] given the policy's forward output and
    /// the reference's summed log-probs per row; the loss and gradient are divided by `pairsInStep`
    /// (default: this batch's pairs). Also accumulates TRL's metrics into `metrics`.
    public static func compute(policyOutput: UnsafeBufferPointer<Float>, batch: TokenBatch, referenceLogps: [Double],
                               config: DPOLossConfig, pairsInStep: Int? = nil, nllTokens: Int? = nil,
                               countsNLLTerm: Bool = true, metrics: inout DPOMetrics) -> LossResult {
        require(batch.batch % 2 == 0 && referenceLogps.count == batch.batch, "DPO batches hold chosen rows then rejected rows")
        let K = batch.batch / 2
        let n = Double(pairsInStep ?? K)
        let (sums, tokens) = sequenceLogps(output: policyOutput, batch: batch)
        var rowGrad = [Double](repeating: 0, count: batch.batch)
        var loss = 0.0
        for k in 0..<K {
            let p = DPOPairLogps(policyChosen: sums[k], policyRejected: sums[k + K], referenceChosen: referenceLogps[k],
                                 referenceRejected: referenceLogps[k + K], chosenTokens: tokens[k], rejectedTokens: tokens[k + K])
            let r = pair(p, config)
            loss += r.loss
            rowGrad[k] = r.dPolicyChosen / n
            rowGrad[k + K] = r.dPolicyRejected / n
            metrics.add(p, r)
        }
        var result = LossResult(loss: Float(loss / n), outputGradient: outputGradient(batch: batch, rowGradients: rowGrad))
        if config.rpoAlpha > 0 && result.loss.isFinite {
            metrics.addNLL(addChosenNLL(&result, output: policyOutput, batch: batch, alpha: config.rpoAlpha, tokens: nllTokens),
                           terms: countsNLLTerm ? 1 : 0)
        }
        return result
    }

    /// TRL's RPO term: alpha × the mean negative log-likelihood of the chosen completions' tokens
    /// (rows 0..<K of the batch), added to the loss and its gradient. Returns the NLL. DPO alone
    /// tends to lower the chosen completions' likelihood too; this keeps it up.
    /// `tokens` overrides the normaliser: a data-parallel shard of a micro-batch passes the whole
    /// micro-batch's chosen tokens, so the shards' terms sum to the micro-batch's.
    static func addChosenNLL(_ l: inout LossResult, output: UnsafeBufferPointer<Float>, batch b: TokenBatch, alpha: Double,
                             tokens: Int? = nil) -> Double {
        let K = b.batch / 2, T = b.seqLen
        var count = 0
        for k in 0..<K { count += max(0, b.lengths[k] - max(1, b.scoreFrom[k])) }
        if let tokens, count > 0 { count = tokens }
        guard count > 0 else { return 0 }
        var sum = 0.0
        let g = Float(-alpha / Double(count))
        for k in 0..<K {
            for j in max(1, b.scoreFrom[k])..<max(1, b.lengths[k]) {
                sum += Double(output[k * T + j])
                l.outputGradient[k * T + j] += g
            }
        }
        let nll = -sum / Double(count)
        l.loss += Float(alpha * nll)
        return nll
    }
}

/// TRL's DPO metrics, accumulated over pairs (means are taken in `values`).
public struct DPOMetrics: Sendable {
    public private(set) var pairs = 0
    var loss = 0.0, chosen = 0.0, rejected = 0.0, correct = 0, margin = 0.0, logpsChosen = 0.0, logpsRejected = 0.0
    var nll = 0.0, nllTerms = 0

    public init() {}

    /// Adds one pair.
    public mutating func add(_ p: DPOPairLogps, _ r: DPOPairResult) {
        pairs += 1
        loss += r.loss
        chosen += Double(r.chosenReward)
        rejected += Double(r.rejectedReward)
        if r.chosenReward > r.rejectedReward { correct += 1 }
        margin += Double(r.chosenReward - r.rejectedReward)
        logpsChosen += p.policyChosen
        logpsRejected += p.policyRejected
    }

    /// Adds one batch's RPO negative log-likelihood.
    public mutating func addNLL(_ x: Double, terms: Int = 1) { nll += x; nllTerms += terms }

    /// The sums behind `values` (for adding data-parallel shards' metrics in shard order).
    public var sums: [Double] {
        [Double(pairs), loss, chosen, rejected, Double(correct), margin, logpsChosen, logpsRejected, nll, Double(nllTerms)]
    }

    /// Metrics from `sums` (e.g. the shards' sums added).
    public init(sums s: [Double]) {
        require(s.count == 10, "DPOMetrics sums hold 10 values")
        pairs = Int(s[0]); loss = s[1]; chosen = s[2]; rejected = s[3]; correct = Int(s[4]); margin = s[5]
        logpsChosen = s[6]; logpsRejected = s[7]; nll = s[8]; nllTerms = Int(s[9])
    }

    /// `loss` (the DPO part) and the reward metrics, named as TRL logs them, in a fixed order; with
    /// RPO also `nll_loss`, the mean over batches.
    public var values: [(String, Double)] {
        let n = Double(max(1, pairs))
        return [
            ("loss", loss / n), ("rewards/chosen", chosen / n), ("rewards/rejected", rejected / n),
            ("rewards/accuracies", Double(correct) / n), ("rewards/margins", margin / n),
            ("logps/chosen", logpsChosen / n), ("logps/rejected", logpsRejected / n),
        ] + (nllTerms > 0 ? [("nll_loss", nll / Double(nllTerms))] : [])
    }
}

/// log(1 + e^x), stable for large |x|.
@inline(__always)
func softplus(_ x: Double) -> Double { x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)) }

/// σ(x) = 1 / (1 + e^−x), stable for large |x|.
@inline(__always)
func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }
