// Group-relative advantages of GRPO and RLOO as TRL 1.16 computes them in
// `_generate_and_score_completions` (`trl/trainer/grpo_trainer.py` lines 2753–2830,
// `trl/trainer/rloo_trainer.py` lines 1656–1699), with the reward metrics TRL logs there.
// Formulas: Tests/Fixtures/grpo/README.md, section "Advantages".
//
// Layout: rows are in TRL's RepeatSampler order, groups of G consecutive rows share a prompt.
// `rewards[i][k]` is reward function k on row i; NaN = the function returned None (unscorable).
// Standard deviations are TRL's `nanstd`: Bessel-corrected (n − 1), NaN ignored. Everything runs in
// Double; the fixtures hold TRL's float32 results and the tolerances cover the difference.

import Foundation

/// Advantages and TRL's reward metrics of one generation batch.
public struct GroupAdvantages: Sendable {
    /// One advantage per row, NaN replaced by 0 (TRL's `nan_to_num`).
    public var advantages: [Double]
    /// TRL's names: `reward`, `reward_std`, `frac_reward_zero_std`, `rewards/<name>/mean|std`
    /// (and for RLOO with beta ≠ 0 `kl`), in a fixed order.
    public var metrics: [(String, Double)]
}

/// GRPO and RLOO advantages.
public enum GroupAdvantage {
    /// GRPO advantages (TRL `GRPOTrainer`): `rewards` [B][K] (NaN = unscorable), `groupSize` G
    /// (B must be a multiple), reward-function `names` [K] for the metrics. Reads `scale_rewards`,
    /// `multi_objective_aggregation` and `reward_weights` from `config`.
    public static func grpo(rewards: [[Double]], groupSize g: Int, names: [String], config: GRPOConfig) throws -> GroupAdvantages {
        let k = try checkShape(rewards, groupSize: g, names: names, weights: config.rewardWeights)
        let w = config.rewardWeights ?? Array(repeating: 1, count: k)
        let b = rewards.count
        let unscorable = rewards.map { $0.allSatisfy(\.isNaN) }
        var advantages: [Double], zeroStdRows: Int
        switch config.multiObjectiveAggregation {
        case .sumThenNormalize:
            let r = weightedSum(rewards, w, unscorable)
            advantages = (0..<b).map { r[$0] - groupStat(r, row: $0, g, nanmean) }
            let groupStd = (0..<b).map { groupStat(r, row: $0, g, nanstd) }
            let batchStd = nanstd(r[...])
            let std = config.scaleRewards == .batch ? Array(repeating: batchStd, count: b) : groupStd
            if config.scaleRewards != .none { for i in 0..<b { advantages[i] /= std[i] + 1e-4 } }
            zeroStdRows = std.filter(isCloseToZero).count
        case .normalizeThenSum:
            var normalized = rewards
            for j in 0..<k {
                let column = rewards.map { $0[j] }
                for i in 0..<b {
                    normalized[i][j] = (column[i] - groupStat(column, row: i, g, nanmean)) / (groupStat(column, row: i, g, nanstd) + 1e-4)
                }
            }
            let r = weightedSum(normalized, w, unscorable)
            let mean = nanmean(r[...]), std = nanstd(r[...])
            advantages = r.map { ($0 - mean) / (std + 1e-4) }
            zeroStdRows = isCloseToZero(std) ? b : 0
        }
        advantages = advantages.map { $0.isNaN ? 0 : $0 }
        let raw = weightedSum(rewards, w, unscorable)
        return GroupAdvantages(advantages: advantages,
                               metrics: rewardMetrics(rewards, names: names, weighted: raw) + [("frac_reward_zero_std", Double(zeroStdRows) / Double(b))])
    }

    /// RLOO advantages (TRL `RLOOTrainer`): rewards as for `grpo`; when `config.beta` ≠ 0,
    /// `klPerRow[i]` = Σ_t (logp_gen − logp_ref)·m over row i's completion (generation-time policy
    /// log-probs, no gradient) and `klTokens` the number of completion tokens, for the `kl` metric.
    public static func rloo(rewards: [[Double]], groupSize g: Int, names: [String], klPerRow: [Double]? = nil,
                            klTokens: Int = 0, config: RLOOConfig) throws -> GroupAdvantages {
        let k = try checkShape(rewards, groupSize: g, names: names, weights: config.rewardWeights)
        let w = config.rewardWeights ?? Array(repeating: 1, count: k)
        let b = rewards.count
        let raw = weightedSum(rewards, w, rewards.map { $0.allSatisfy(\.isNaN) })
        var r = raw
        if let range = config.rewardClipRange { r = r.map { $0.isNaN ? $0 : min(max($0, range[0]), range[1]) } }
        var metrics: [(String, Double)] = []
        if config.beta != 0 {
            guard let kl = klPerRow, kl.count == b else {
                throw JobError("RLOO with beta \(config.beta) needs the summed KL of each of the \(b) rows (generation and reference log-probs)")
            }
            for i in 0..<b { r[i] -= config.beta * kl[i] }
            metrics.append(("kl", kl.reduce(0, +) / Double(max(klTokens, 1))))
        }
        var advantages = [Double](repeating: .nan, count: b)
        for i in 0..<b {
            let group = r[(i / g * g)..<(i / g * g + g)]
            let scorable = group.filter { !$0.isNaN }
            advantages[i] = r[i] - (scorable.reduce(0, +) - r[i]) / Double(scorable.count - 1)
        }
        if config.normalizeAdvantages {
            let mean = nanmean(advantages[...]), std = nanstd(advantages[...])
            advantages = advantages.map { ($0 - mean) / (std + 1e-4) }
        }
        let zeroGroups = stride(from: 0, to: b, by: g).filter { isCloseToZero(nanstd(r[$0..<($0 + g)])) }.count
        metrics += rewardMetrics(rewards, names: names, weighted: raw)
        metrics.append(("frac_reward_zero_std", Double(zeroGroups) / Double(b / g)))
        return GroupAdvantages(advantages: advantages.map { $0.isNaN ? 0 : $0 }, metrics: metrics)
    }

    /// TRL's `rewards/<name>/mean|std` per function, then `reward` and `reward_std` of the weighted sum.
    static func rewardMetrics(_ rewards: [[Double]], names: [String], weighted: [Double]) -> [(String, Double)] {
        var m: [(String, Double)] = []
        for (j, name) in names.enumerated() {
            let column = rewards.map { $0[j] }
            m += [("rewards/\(name)/mean", nanmean(column[...])), ("rewards/\(name)/std", nanstd(column[...]))]
        }
        return m + [("reward", nanmean(weighted[...])), ("reward_std", nanstd(weighted[...]))]
    }

    /// Checks the reward matrix; returns K.
    static func checkShape(_ rewards: [[Double]], groupSize g: Int, names: [String], weights: [Double]?) throws -> Int {
        guard g >= 2 else { throw JobError("group size (num_generations) must be ≥ 2 for group-relative advantages, got \(g)") }
        guard !rewards.isEmpty, rewards.count % g == 0 else {
            throw JobError("\(rewards.count) rows are not whole groups of \(g) (num_generations)")
        }
        let k = names.count
        if let bad = rewards.firstIndex(where: { $0.count != k }) {
            throw JobError("row \(bad) has \(rewards[bad].count) rewards, expected one per reward function (\(k))")
        }
        if let w = weights, w.count != k {
            throw JobError("reward_weights has \(w.count) entries, expected one per reward function (\(k))")
        }
        if let bad = rewards.firstIndex(where: { $0.contains { $0.isInfinite } }) {
            throw JobError("row \(bad) has an infinite reward; rewards must be finite (NaN / null = unscorable)")
        }
        return k
    }

    /// nansum_k w_k R[i,k], NaN where the row is unscorable.
    static func weightedSum(_ rewards: [[Double]], _ w: [Double], _ unscorable: [Bool]) -> [Double] {
        rewards.indices.map { i in
            unscorable[i] ? .nan : zip(rewards[i], w).reduce(0) { $0 + ($1.0.isNaN ? 0 : $1.0 * $1.1) }
        }
    }

    /// `stat` of row i's group of g rows.
    static func groupStat(_ x: [Double], row i: Int, _ g: Int, _ stat: (ArraySlice<Double>) -> Double) -> Double {
        stat(x[(i / g * g)..<(i / g * g + g)])
    }

    /// torch.isclose(x, 0): |x| ≤ 1e-8 (rtol · 0 + atol).
    static func isCloseToZero(_ x: Double) -> Bool { abs(x) <= 1e-8 }
}

/// Mean ignoring NaN (NaN when every value is NaN).
func nanmean(_ x: ArraySlice<Double>) -> Double {
    let v = x.filter { !$0.isNaN }
    return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
}

/// TRL's `nanstd`: Bessel-corrected standard deviation ignoring NaN (NaN with fewer than 2 values).
func nanstd(_ x: ArraySlice<Double>) -> Double {
    let v = x.filter { !$0.isNaN }
    guard v.count >= 2 else { return .nan }
    let mean = v.reduce(0, +) / Double(v.count)
    return (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)).squareRoot()
}
