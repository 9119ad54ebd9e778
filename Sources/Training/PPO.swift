// PPO numerics of TRL 1.12.0 (`trl/experimental/ppo/ppo_trainer.py`, the last trl with a PPO
// trainer): rollout post-processing (`PPOTrainer.train` lines 755–800: masking, KL penalty, score
// placement, GAE, advantage whitening) and the clipped policy / value losses (lines 819–857) with
// their gradients. Spec and fixture: Tests/Fixtures/oracle/README.md, case `ppo`.
//
// Shapes: B rows padded to width T, every per-token array row-major [B·T]; row b has n_b real
// response tokens at t < n_b. Two masks, as TRL names them (true = masked out):
//   padding    t ≥ n_b      log-probs, KL, advantages and the policy loss ignore these positions;
//   paddingP1  t ≥ n_b + 1  values and the value loss ignore these: TRL keeps ONE extra value at
//                           t = n_b, the first padding position, which is where the score lands.
// Every input at a masked position is ignored (replaced before use), so callers may leave garbage
// there. Elementwise arithmetic is Float like TRL's float32 tensors; sums, means, variances and the
// GAE recursion run in Double.

import Foundation
import Kernels

/// The per-token KL estimator of the KL penalty (TRL `kl_estimator`).
public enum KLEstimator: String, Codable, Sendable, CaseIterable {
    /// log π_old − log π_ref (TRL's default).
    case k1
    /// (e^r − 1) − r with r = log π_ref − log π_old: never negative, same expectation as k1.
    case k3
}

/// PPO hyperparameters (TRL `PPOConfig` defaults; the KL coefficient is passed per round instead).
public struct PPOConfig: Sendable, Equatable {
    /// Estimator of the per-token KL penalty.
    public var klEstimator: KLEstimator = .k1
    /// Discount factor of GAE.
    public var gamma: Double = 1
    /// GAE λ.
    public var lam: Double = 0.95
    /// The ratio is clipped to [1 − cliprange, 1 + cliprange].
    public var cliprange: Double = 0.2
    /// New values are clipped to within ±cliprangeValue of the rollout values.
    public var cliprangeValue: Double = 0.2
    /// Weight of the value loss in `loss`.
    public var vfCoef: Double = 0.1
    /// TRL's defaults.
    public init() {}

    /// Range checks (NaN fails every one). `name` spells a setting (TRL's snake_case key) for the
    /// caller's users.
    public func validate(name: (String) -> String = { $0 }) throws {
        guard (0...1).contains(gamma) else { throw JobError("\(name("gamma")) must be in [0, 1], got \(gamma)") }
        guard (0...1).contains(lam) else { throw JobError("\(name("lam")) must be in [0, 1], got \(lam)") }
        guard cliprange > 0, cliprange.isFinite else { throw JobError("\(name("cliprange")) must be > 0, got \(cliprange)") }
        guard cliprangeValue > 0, cliprangeValue.isFinite else {
            throw JobError("\(name("cliprange_value")) must be > 0, got \(cliprangeValue)")
        }
        guard vfCoef >= 0, vfCoef.isFinite else { throw JobError("\(name("vf_coef")) must be ≥ 0, got \(vfCoef)") }
    }
}

/// Rollout rows, each padded to width T (the campaign uses T = max_new_tokens), row-major [B·T].
/// lengths[b] = n_b real response tokens (1 ≤ n_b ≤ T). Values at padded positions are arbitrary.
public struct PPORollout: Sendable {
    public var width: Int            // T
    public var lengths: [Int]        // [B]
    public var logprobs: [Float]     // rollout (old) log-probs [B·T]
    public var refLogprobs: [Float]  // [B·T]
    public var values: [Float]       // value-model outputs [B·T]; position t = n_b is used when n_b < T
    public var scores: [Float]       // [B]
    public init(width: Int, lengths: [Int], logprobs: [Float], refLogprobs: [Float], values: [Float], scores: [Float]) {
        self.width = width
        self.lengths = lengths
        self.logprobs = logprobs
        self.refLogprobs = refLogprobs
        self.values = values
        self.scores = scores
    }
}

/// Steps 1–5 of the README (all arrays [B·T], masked exactly as the README says).
public struct PPOAdvantages: Sendable {
    /// Where row b's score was added: n_b, or T − 1 when the response fills the row.
    public var scoreIndex: [Int]
    public var kl: [Float]                // the estimator chosen in config (k1 default), 0 at padding
    public var nonScoreReward: [Float]
    public var rewards: [Float]
    public var values: [Float]            // values_masked (kept for t ≤ n_b)
    public var advantagesUnwhitened: [Float]
    public var returns: [Float]
    public var advantages: [Float]        // whitened, 0 at padding
    /// TRL's objective/* metrics: kl = mean over rows of Σ_t kl; entropy = mean over rows of Σ over REAL tokens of −logprob
    /// (TRL also adds −INVALID_LOGPROB at padding — we deliberately don't); non_score_reward = mean_b Σ_t non_score_reward;
    /// rlhf_reward = that + mean(scores); scores = mean(scores).
    public var metrics: [(String, Double)]
}

/// The clipped PPO loss on a minibatch, its parts and its gradients.
public struct PPOLossResult: Sendable {
    public var pgLoss: Double, vfLoss: Double, loss: Double       // loss = pg + vf_coef·vf
    public var pgClipfrac: Double, vfClipfrac: Double, approxKL: Double
    public var ratioMean: Double                                  // mean of exp(new − old) over all B·T (1 at padding), TRL's val/ratio input
    public var ratio: [Float], pgLosses: [Float], pgLosses2: [Float], vpred: [Float], vpredClipped: [Float], vfLosses1: [Float], vfLosses2: [Float]
    /// dLoss/d newLogprobs [B·T] (0 at padding) and dLoss/d newValues [B·T] (vf_coef included; 0 where masked by padding_mask_p1).
    public var dNewLogprobs: [Float]
    public var dNewValues: [Float]
}

extension PPOLossResult {
    /// pg loss, vf loss, pg clipfrac, vf clipfrac, approx KL, ratio mean: what data-parallel shards add.
    public var scalars: [Double] { [pgLoss, vfLoss, pgClipfrac, vfClipfrac, approxKL, ratioMean] }

    /// A minibatch's result from its shards' summed `scalars` (no per-position arrays).
    public init(scalars s: [Double], vfCoef: Double) {
        require(s.count == 6, "PPOLossResult scalars hold 6 values")
        self.init(pgLoss: s[0], vfLoss: s[1], loss: s[0] + vfCoef * s[1], pgClipfrac: s[2], vfClipfrac: s[3], approxKL: s[4],
                  ratioMean: s[5], ratio: [], pgLosses: [], pgLosses2: [], vpred: [], vpredClipped: [], vfLosses1: [],
                  vfLosses2: [], dNewLogprobs: [], dNewValues: [])
    }
}

/// The normalisers of a minibatch's PPO loss.
public struct PPOCounts: Sendable {
    /// Response tokens (the policy loss), value positions (min(n + 1, T) per row), all B·T positions.
    public var tokens: Double, valuePositions: Double, positions: Double
    public init(lengths: [Int], width: Int) {
        tokens = Double(lengths.reduce(0, +))
        valuePositions = Double(lengths.reduce(0) { $0 + min($1 + 1, width) })
        positions = Double(lengths.count * width)
    }
}

/// TRL's PPO rollout post-processing and clipped losses.
public enum PPO {
    /// TRL's masks [B·T] (true = masked): `padding` is t ≥ n_b, `paddingP1` is t ≥ n_b + 1.
    static func masks(lengths: [Int], width T: Int) -> (padding: [Bool], paddingP1: [Bool]) {
        for n in lengths { require(n >= 1 && n <= T, "PPO: response length \(n) outside 1...\(T)") }
        return (lengths.flatMap { n in (0..<T).map { $0 >= n } }, lengths.flatMap { n in (0..<T).map { $0 > n } })
    }

    /// KL penalty, rewards, GAE advantages and returns, and whitened advantages of a rollout batch.
    ///
    /// The score is added at t = n_b (one past the last real token) when n_b < T, at the last token
    /// otherwise; the value at t = n_b is kept, so GAE bootstraps the last real token from it. The
    /// advantages are whitened over all real tokens of the batch with the unbiased (n − 1) variance.
    /// klCoef is passed separately because an adaptive controller changes it per round.
    public static func advantages(_ r: PPORollout, klCoef: Double, config: PPOConfig) -> PPOAdvantages {
        let T = r.width, B = r.lengths.count, N = B * T
        require(r.logprobs.count == N && r.refLogprobs.count == N && r.values.count == N && r.scores.count == B,
                "PPO.advantages: arrays must be [B·T] = \(N) and scores [B] = \(B)")
        let (padding, paddingP1) = masks(lengths: r.lengths, width: T)
        var kl = [Float](repeating: 0, count: N), nonScore = kl, rewards = kl, values = kl, adv = kl, returns = kl
        var scoreIndex = [Int](repeating: 0, count: B)
        var klSum = 0.0, entropySum = 0.0, nonScoreSum = 0.0
        for b in 0..<B {
            let row = b * T
            for i in row..<(row + T) {
                values[i] = paddingP1[i] ? 0 : r.values[i]
                guard !padding[i] else { continue }
                let logr = r.refLogprobs[i] - r.logprobs[i]
                switch config.klEstimator {
                case .k1: kl[i] = -logr
                case .k3: kl[i] = Float(expm1(Double(logr)) - Double(logr))
                }
                nonScore[i] = Float(-klCoef * Double(kl[i]))
                rewards[i] = nonScore[i]
                klSum += Double(kl[i])
                nonScoreSum += Double(nonScore[i])
                entropySum -= Double(r.logprobs[i])
            }
            let n = r.lengths[b]
            scoreIndex[b] = n < T ? n : T - 1
            rewards[row + scoreIndex[b]] += r.scores[b]
            // GAE backwards over all T positions (values past t = n_b are 0, so padding adds nothing).
            var gae = 0.0
            for t in stride(from: T - 1, through: 0, by: -1) {
                let next = t + 1 < T ? Double(values[row + t + 1]) : 0
                gae = Double(rewards[row + t]) + config.gamma * next - Double(values[row + t]) + config.gamma * config.lam * gae
                adv[row + t] = Float(gae)
                returns[row + t] = Float(gae + Double(values[row + t]))
            }
        }
        // Whitening over real tokens (TRL `masked_whiten`, unbiased variance, eps 1e-8 inside the rsqrt).
        let real = padding.lazy.filter { !$0 }.count
        require(real > 1, "PPO.advantages: whitening needs more than one real token in the batch (got \(real))")
        var sum = 0.0
        for i in 0..<N where !padding[i] { sum += Double(adv[i]) }
        let mean = sum / Double(real)
        var squares = 0.0
        for i in 0..<N where !padding[i] { squares += (Double(adv[i]) - mean) * (Double(adv[i]) - mean) }
        let scale = 1 / (squares / Double(real - 1) + 1e-8).squareRoot()
        let whitened = (0..<N).map { padding[$0] ? 0 : Float((Double(adv[$0]) - mean) * scale) }
        // TRL's entropy metric also adds −INVALID_LOGPROB (−1) per padding position; we sum real tokens only.
        let meanScore = r.scores.reduce(0.0) { $0 + Double($1) } / Double(B)
        let metrics = [("objective/kl", klSum / Double(B)), ("objective/entropy", entropySum / Double(B)),
                       ("objective/non_score_reward", nonScoreSum / Double(B)),
                       ("objective/rlhf_reward", nonScoreSum / Double(B) + meanScore), ("objective/scores", meanScore)]
        return PPOAdvantages(scoreIndex: scoreIndex, kl: kl, nonScoreReward: nonScore, rewards: rewards, values: values,
                             advantagesUnwhitened: adv, returns: returns, advantages: whitened, metrics: metrics)
    }

    /// Clipped policy loss + vf_coef · clipped value loss on a minibatch of rows, with gradients.
    ///
    /// The policy loss averages over real tokens; the value loss over real tokens plus the extra
    /// position t = n_b. oldValues are the masked values from `advantages` (PPOAdvantages.values),
    /// `advantages` the whitened ones. Gradients follow torch: max splits ties 0.5/0.5, clamp passes
    /// the gradient when min ≤ x ≤ max.
    /// `counts`: the normalisers of the whole minibatch when these rows are one data-parallel shard of
    /// it (the shards' losses, gradients and metrics then sum to the minibatch's); default these rows'.
    public static func loss(newLogprobs: [Float], newValues: [Float], oldLogprobs: [Float], oldValues: [Float],
                            advantages: [Float], returns: [Float], lengths: [Int], width: Int, config: PPOConfig,
                            counts: PPOCounts? = nil) -> PPOLossResult {
        let N = lengths.count * width
        require([newLogprobs, newValues, oldLogprobs, oldValues, advantages, returns].allSatisfy { $0.count == N },
                "PPO.loss: arrays must be [B·T] = \(N)")
        let (padding, paddingP1) = masks(lengths: lengths, width: width)
        let whole = counts ?? PPOCounts(lengths: lengths, width: width)
        let pgCount = whole.tokens, vfCount = whole.valuePositions
        let lo = Float(1 - config.cliprange), hi = Float(1 + config.cliprange), cv = Float(config.cliprangeValue)
        var out = PPOLossResult(pgLoss: 0, vfLoss: 0, loss: 0, pgClipfrac: 0, vfClipfrac: 0, approxKL: 0, ratioMean: 0,
                                ratio: [], pgLosses: [], pgLosses2: [], vpred: [], vpredClipped: [], vfLosses1: [], vfLosses2: [],
                                dNewLogprobs: [], dNewValues: [])
        var pgSum = 0.0, vfSum = 0.0, pgClipped = 0, vfClipped = 0, klSum = 0.0, ratioSum = 0.0
        for i in 0..<N {
            // Policy: TRL fills both log-probs with 1.0 at padding (ratio 1); advantages are 0 there.
            // l1, l2 are TRL's float32 terms and decide max and clipfrac; p1, p2 are the same terms in
            // Double for the sum. d l1 / d new = l1 (d ratio = ratio); l2's is that inside the clip range.
            let diff = padding[i] ? 0 : Double(newLogprobs[i]) - Double(oldLogprobs[i]), a = padding[i] ? 0 : advantages[i]
            let r = exp(diff), ratio = Float(r)
            let l1 = -a * ratio, l2 = -a * min(max(ratio, lo), hi)
            let p1 = -Double(a) * r, p2 = -Double(a) * min(max(r, Double(lo)), Double(hi))
            out.ratio.append(ratio); out.pgLosses.append(l1); out.pgLosses2.append(l2)
            out.dNewLogprobs.append(padding[i] ? 0 : Float(maxGradient(l1, l2, p1, lo <= ratio && ratio <= hi ? p1 : 0) / pgCount))
            if !padding[i] {
                pgSum += l2 > l1 ? p2 : p1
                if l2 > l1 { pgClipped += 1 }
            }
            klSum += diff * diff
            ratioSum += Double(ratio)
            // Value: vpred, the rollout values and the returns are 0 past t = n_b. f = e², df/dv = 2e
            // (the clipped side's only inside the clip window).
            let v = paddingP1[i] ? 0 : newValues[i], old = paddingP1[i] ? 0 : oldValues[i], ret = paddingP1[i] ? 0 : returns[i]
            let vlo = old - cv, vhi = old + cv
            let clipped = min(max(v, vlo), vhi)
            let f1 = (v - ret) * (v - ret), f2 = (clipped - ret) * (clipped - ret)
            let e1 = Double(v) - Double(ret), e2 = Double(clipped) - Double(ret)
            out.vpred.append(v); out.vpredClipped.append(clipped); out.vfLosses1.append(f1); out.vfLosses2.append(f2)
            let dv = maxGradient(f1, f2, 2 * e1, vlo <= v && v <= vhi ? 2 * e2 : 0)
            out.dNewValues.append(paddingP1[i] ? 0 : Float(config.vfCoef * 0.5 * dv / vfCount))
            if !paddingP1[i] {
                vfSum += f2 > f1 ? e2 * e2 : e1 * e1
                if f2 > f1 { vfClipped += 1 }
            }
        }
        out.pgLoss = pgSum / pgCount
        out.vfLoss = 0.5 * vfSum / vfCount
        out.loss = out.pgLoss + config.vfCoef * out.vfLoss
        out.pgClipfrac = Double(pgClipped) / pgCount
        out.vfClipfrac = Double(vfClipped) / vfCount
        out.approxKL = 0.5 * klSum / whole.positions   // TRL averages over all positions, padding included
        out.ratioMean = ratioSum / whole.positions
        return out
    }

    /// d max(a, b) given da and db (torch.maximum: the larger side's gradient, halves on a tie).
    static func maxGradient(_ a: Float, _ b: Float, _ da: Double, _ db: Double) -> Double {
        a > b ? da : b > a ? db : 0.5 * (da + db)
    }
}
