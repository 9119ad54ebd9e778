// PPO numerics against TRL 1.12.0's PPOTrainer (oracle case `ppo`, README section "`ppo`"): every
// output array and scalar, the gradients of the loss by central differences, that padded inputs
// are ignored, and that the per-row quantities before whitening do not depend on the other rows.

import Foundation
import Testing
import TestSupport
@testable import Training

struct PPOOracleTests {
    static let ppo = Oracle.cases["ppo"]!
    static let hyper = ppo["hyperparameters"]!
    static let T = 6
    static let lengths = Oracle.ints(ppo["inputs"]!["response_mask"]).chunked(T).map { $0.reduce(0, +) }
    static let klCoef = hyper["kl_coef"]!.double!

    static func input(_ key: String) -> [Float] { Oracle.floats(ppo["inputs"]![key]) }
    static func expected(_ key: String) -> [Float] { Oracle.floats(ppo["outputs"]![key]) }

    static func config(_ estimator: KLEstimator = .k1) -> PPOConfig {
        var c = PPOConfig()
        c.klEstimator = estimator
        c.gamma = hyper["gamma"]!.double!
        c.lam = hyper["lam"]!.double!
        c.cliprange = hyper["cliprange"]!.double!
        c.cliprangeValue = hyper["cliprange_value"]!.double!
        c.vfCoef = hyper["vf_coef"]!.double!
        return c
    }

    static let rollout = PPORollout(width: T, lengths: lengths, logprobs: input("old_logprobs"), refLogprobs: input("ref_logprobs"),
                                    values: input("old_values"), scores: input("scores"))

    /// `PPO.loss` on the fixture's new log-probs / values and the given post-processed rollout.
    static func loss(_ a: PPOAdvantages, newLogprobs: [Float] = input("new_logprobs"), newValues: [Float] = input("new_values"),
                     oldLogprobs: [Float] = input("old_logprobs")) -> PPOLossResult {
        PPO.loss(newLogprobs: newLogprobs, newValues: newValues, oldLogprobs: oldLogprobs, oldValues: a.values,
                 advantages: a.advantages, returns: a.returns, lengths: lengths, width: T, config: config())
    }

    /// |actual − expected| ≤ tolerance (the README's absolute tolerance for the clip fractions).
    static func expectAbsolute(_ actual: Double, _ key: String, _ tolerance: Double = 1e-6) {
        let e = Double(expected(key)[0])
        #expect(abs(actual - e) <= tolerance, "\(key): \(actual) vs \(e)")
        if ProcessInfo.processInfo.environment["RONDO_REPORT_ERRORS"] != nil {
            print("oracle-error \(key): \(abs(actual - e)) absolute (tolerance \(tolerance))")
        }
    }

    @Test func everyOutputMatchesTRL() {
        let (padding, paddingP1) = PPO.masks(lengths: Self.lengths, width: Self.T)
        #expect(Self.lengths.map { $0 - 1 } == Oracle.ints(Self.ppo["outputs"]!["sequence_lengths"]))
        #expect(padding.map { $0 ? 1 : 0 } == Oracle.ints(Self.ppo["outputs"]!["padding_mask"]))
        #expect(paddingP1.map { $0 ? 1 : 0 } == Oracle.ints(Self.ppo["outputs"]!["padding_mask_p1"]))

        let a = PPO.advantages(Self.rollout, klCoef: Self.klCoef, config: Self.config())
        #expect(a.scoreIndex == Oracle.ints(Self.ppo["outputs"]!["score_index"]))
        let arrays: [(String, [Float])] = [
            ("kl", a.kl), ("non_score_reward", a.nonScoreReward), ("rewards", a.rewards), ("values_masked", a.values),
            ("advantages_unwhitened", a.advantagesUnwhitened), ("returns", a.returns), ("advantages", a.advantages),
        ]
        for (key, got) in arrays { expectClose(got, Self.expected(key), 1e-6, "ppo.\(key)") }
        let k3 = PPO.advantages(Self.rollout, klCoef: Self.klCoef, config: Self.config(.k3))
        expectClose(k3.kl, Self.expected("kl_k3"), 1e-6, "ppo.kl_k3")

        let m = Dictionary(uniqueKeysWithValues: a.metrics)
        #expect(a.metrics.map(\.0) == ["objective/kl", "objective/entropy", "objective/non_score_reward", "objective/rlhf_reward",
                                       "objective/scores"])
        expectClose([Float(m["objective/non_score_reward"]!)], Self.expected("mean_non_score_reward"), 1e-6, "ppo.mean_non_score_reward")
        expectClose([Float(m["objective/rlhf_reward"]!)], Self.expected("rlhf_reward"), 1e-6, "ppo.rlhf_reward")
        let rowSum = { (x: [Float]) in x.reduce(0.0) { $0 + Double($1) } / 2 }
        expectClose([Float(m["objective/kl"]!)], [Float(rowSum(Self.expected("kl")))], 1e-6, "ppo objective/kl")
        let realLogprobs = zip(Self.input("old_logprobs"), padding).map { $1 ? 0 : -$0 }
        expectClose([Float(m["objective/entropy"]!)], [Float(rowSum(realLogprobs))], 1e-6, "ppo objective/entropy (real tokens)")
        expectClose([Float(m["objective/scores"]!)], [Float(rowSum(Self.input("scores")))], 1e-6, "ppo objective/scores")

        let l = Self.loss(a)
        let lossArrays: [(String, [Float])] = [
            ("ratio", l.ratio), ("pg_losses", l.pgLosses), ("pg_losses2", l.pgLosses2), ("vpred", l.vpred),
            ("vpredclipped", l.vpredClipped), ("vf_losses1", l.vfLosses1), ("vf_losses2", l.vfLosses2),
        ]
        for (key, got) in lossArrays { expectClose(got, Self.expected(key), 1e-6, "ppo.\(key)") }
        for (key, got) in [("pg_loss", l.pgLoss), ("vf_loss", l.vfLoss), ("loss", l.loss), ("approxkl", l.approxKL)] {
            expectClose([Float(got)], Self.expected(key), 1e-6, "ppo.\(key)")
        }
        Self.expectAbsolute(l.pgClipfrac, "pg_clipfrac")
        Self.expectAbsolute(l.vfClipfrac, "vf_clipfrac")
        expectClose([Float(l.ratioMean)], [Float(rowSum(Self.expected("ratio")) / 6)], 1e-6, "ppo ratio mean")
    }

    /// Central differences of `loss` in each new log-prob and new value. The fixture keeps every
    /// ratio and value ≥ 0.01 from a clip boundary, so a step of 1e-3 never crosses one; the sums
    /// run in Double, so 1e-4 of the largest gradient is ample.
    @Test func gradientsMatchFiniteDifferences() {
        let a = PPO.advantages(Self.rollout, klCoef: Self.klCoef, config: Self.config())
        let logprobs = Self.input("new_logprobs"), values = Self.input("new_values")
        let l = Self.loss(a)
        for (name, x, analytic) in [("dNewLogprobs", logprobs, l.dNewLogprobs), ("dNewValues", values, l.dNewValues)] {
            let scale = analytic.map { abs(Double($0)) }.max()!
            var worst = 0.0
            for i in x.indices {
                var plus = x, minus = x
                plus[i] += 1e-3
                minus[i] -= 1e-3
                let f = { (y: [Float]) in name == "dNewLogprobs" ? Self.loss(a, newLogprobs: y).loss : Self.loss(a, newValues: y).loss }
                let fd = (f(plus) - f(minus)) / (Double(plus[i]) - Double(minus[i]))
                worst = maxOrNaN(worst, abs(fd - Double(analytic[i])) / scale)
            }
            #expect(worst < 1e-4, "\(name): finite differences differ by \(worst) of max |gradient| \(scale)")
            if ProcessInfo.processInfo.environment["RONDO_REPORT_ERRORS"] != nil { print("ppo \(name) vs finite differences: \(worst)") }
        }
        #expect(l.dNewLogprobs[10] == 0 && l.dNewLogprobs[11] == 0 && l.dNewValues[11] == 0, "no gradient into padding")
        #expect(l.dNewValues[10] != 0, "the extra value position t = n_b is trained")
    }

    /// Garbage (random bit patterns: NaN, ±inf, huge) at every padded input changes no output bit.
    @Test func paddedInputsAreIgnored() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func garbage(_ x: [Float], from start: (Int) -> Int) -> [Float] {
            var y = x
            for (b, n) in Self.lengths.enumerated() where start(n) < Self.T {
                for t in start(n)..<Self.T {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    y[b * Self.T + t] = Float(bitPattern: UInt32(truncatingIfNeeded: state >> 32))
                }
            }
            return y
        }
        let pad = { (n: Int) in n }, padP1 = { (n: Int) in n + 1 }
        let r = Self.rollout
        var dirty = r
        dirty.logprobs = garbage(r.logprobs, from: pad)
        dirty.refLogprobs = garbage(r.refLogprobs, from: pad)
        dirty.values = garbage(r.values, from: padP1)
        let clean = PPO.advantages(r, klCoef: Self.klCoef, config: Self.config())
        let noisy = PPO.advantages(dirty, klCoef: Self.klCoef, config: Self.config())
        for (x, y) in zip(Self.advantageArrays(clean), Self.advantageArrays(noisy)) { #expect(bits(x) == bits(y)) }
        #expect(clean.scoreIndex == noisy.scoreIndex)
        #expect(clean.metrics.map(\.1) == noisy.metrics.map(\.1))

        let l1 = Self.loss(clean)
        let l2 = PPO.loss(newLogprobs: garbage(Self.input("new_logprobs"), from: pad), newValues: garbage(Self.input("new_values"), from: padP1),
                          oldLogprobs: garbage(r.logprobs, from: pad), oldValues: garbage(clean.values, from: padP1),
                          advantages: garbage(clean.advantages, from: pad), returns: garbage(clean.returns, from: padP1),
                          lengths: Self.lengths, width: Self.T, config: Self.config())
        for (x, y) in zip(Self.lossArrays(l1), Self.lossArrays(l2)) { #expect(bits(x) == bits(y)) }
        #expect(Self.lossScalars(l1) == Self.lossScalars(l2))
    }

    /// Rows computed together or alone give the same bits before whitening.
    @Test(arguments: [KLEstimator.k1, .k3])
    func rowsAreIndependentBeforeWhitening(estimator: KLEstimator) {
        let r = Self.rollout, T = Self.T
        let both = PPO.advantages(r, klCoef: Self.klCoef, config: Self.config(estimator))
        for b in 0..<2 {
            let rows = (b * T)..<((b + 1) * T)
            let alone = PPO.advantages(PPORollout(width: T, lengths: [r.lengths[b]], logprobs: Array(r.logprobs[rows]),
                                                  refLogprobs: Array(r.refLogprobs[rows]), values: Array(r.values[rows]),
                                                  scores: [r.scores[b]]),
                                       klCoef: Self.klCoef, config: Self.config(estimator))
            #expect(alone.scoreIndex == [both.scoreIndex[b]])
            for (x, y) in zip(Self.advantageArrays(both).dropLast(), Self.advantageArrays(alone).dropLast()) {
                #expect(bits(Array(x[rows])) == bits(y), "row \(b)")
            }
        }
    }

    /// A batch with a single real token cannot be whitened (unbiased variance): a clear trap, also under -Ounchecked.
    @Test func whiteningNeedsTwoTokens() async {
        await #expect(processExitsWith: .failure) {
            let r = PPORollout(width: 3, lengths: [1], logprobs: [-1, 0, 0], refLogprobs: [-1, 0, 0], values: [0, 0, 0], scores: [1])
            _ = PPO.advantages(r, klCoef: 0.05, config: PPOConfig())
        }
    }

    /// kl, non-score reward, rewards, values, unwhitened advantages, returns, then the whitened advantages last.
    static func advantageArrays(_ a: PPOAdvantages) -> [[Float]] {
        [a.kl, a.nonScoreReward, a.rewards, a.values, a.advantagesUnwhitened, a.returns, a.advantages]
    }

    static func lossArrays(_ l: PPOLossResult) -> [[Float]] {
        [l.ratio, l.pgLosses, l.pgLosses2, l.vpred, l.vpredClipped, l.vfLosses1, l.vfLosses2, l.dNewLogprobs, l.dNewValues]
    }

    static func lossScalars(_ l: PPOLossResult) -> [Double] {
        [l.pgLoss, l.vfLoss, l.loss, l.pgClipfrac, l.vfClipfrac, l.approxKL, l.ratioMean]
    }
}

private func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

extension Array {
    fileprivate func chunked(_ n: Int) -> [[Element]] { stride(from: 0, to: count, by: n).map { Array(self[$0..<Swift.min($0 + n, count)]) } }
}
