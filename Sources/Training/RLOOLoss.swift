// The RLOO loss of TRL 1.16 (`RLOOTrainer._compute_loss`, `trl/trainer/rloo_trainer.py` lines
// 1794–1861): one clipped ratio per sequence, of SUMMED log-probs against the summed
// generation-time log-probs `old_logps`; a plain mean over rows (the KL is already in the
// advantages, see GroupAdvantages.swift). `RLOOTrainer.loss_is_scaled_for_ga = False`, so the
// Trainer divides the loss by the accumulation steps before backward; this loss includes that
// division. Formulas: Tests/Fixtures/grpo/README.md, "RLOO loss".
//
//   s[b] = Σ_t l m,  r[b] = e^(s[b] − old[b]),  psl[b] = −min(r A, clamp(r, 1 − ε_low, 1 + ε_high) A)
//   loss = mean_b psl[b] / GA,  ∂loss/∂l[b,t] = ∂psl/∂r · r · m / (B · GA)

import Foundation

/// RLOO's sequence-level clipped loss.
public enum RLOOLoss {
    /// The loss of one micro-batch. `batch.oldLogps` and `refLogps` are not read: `oldSequenceLogps`
    /// [B] are the summed generation-time log-probs (TRL's `old_logps`).
    public static func compute(_ batch: PolicyLossBatch, oldSequenceLogps old: [Double], gradientAccumulationSteps ga: Int = 1,
                               config: RLOOConfig) throws -> PolicyLossResult {
        try batch.check(needsReference: false)
        let B = batch.rows, C = batch.width
        guard old.count == B else { throw JobError("RLOO loss: \(old.count) old sequence log-probs for \(B) rows") }
        guard ga >= 1 else { throw JobError("RLOO loss: gradient accumulation steps must be ≥ 1, got \(ga)") }
        let lo = 1 - config.epsilon, hi = 1 + config.effectiveEpsilonHigh
        let n = (0..<B).map(batch.tokens)
        var loss = 0.0, grad = [Float](repeating: 0, count: B * C)
        var low = [Double](repeating: 0, count: B), high = low
        let sums = batch.maskedRowSums { Double(batch.logps[$0]) }
        for b in 0..<B {
            let a = Double(batch.advantages[b])
            let r = exp(sums[b] - old[b])
            let u = r * a, v = min(max(r, lo), hi) * a
            let du = a, dv = (lo <= r && r <= hi) ? a : 0
            loss += -min(u, v)
            let dr = -(u < v ? du : u > v ? dv : 0.5 * (du + dv))
            let g = Float(dr * r / Double(B * ga))
            for t in 0..<C where batch.mask[b * C + t] { grad[b * C + t] = g }
            low[b] = r < lo && a < 0 ? 1 : 0
            high[b] = r > hi && a > 0 ? 1 : 0
        }
        var metrics: [(String, Double)] = []
        if let e = batch.entropies {
            var sum = 0.0
            for i in 0..<(B * C) where batch.mask[i] { sum += Double(e[i]) }
            metrics.append(("entropy", sum / Double(max(n.reduce(0, +), 1))))
        }
        let region = (0..<B).map { max(low[$0], high[$0]) }
        let mean = { (x: [Double]) in x.reduce(0, +) / Double(B) }
        metrics += [("clip_ratio/low_mean", mean(low)), ("clip_ratio/low_min", low.min() ?? .nan),
                    ("clip_ratio/high_mean", mean(high)), ("clip_ratio/high_max", high.max() ?? .nan),
                    ("clip_ratio/region_mean", mean(region))]
        return PolicyLossResult(loss: loss / Double(B * ga), dLogps: grad, metrics: metrics)
    }
}
