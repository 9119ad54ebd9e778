// The GRPO and RLOO losses against TRL 1.16 (Tests/Fixtures/grpo, `cases.grpo_loss.*` and
// `cases.rloo.*`) on TRL's own current log-probs, which isolates the loss from the model: every
// micro-batch loss, loss_total, every logged metric and ∂loss/∂logps, for every loss type and option
// in the set. The model side (log-probs, gradients of every parameter) is GRPOModelTests.

import Foundation
import Testing
import TestSupport
@testable import Training

struct GRPOLossTests {
    @Test(arguments: GRPOCase.grpoNames) func grpoLossMatchesTRL(_ name: String) throws {
        try Self.check(GRPOCase(name))
    }

    @Test(arguments: GRPOCase.rlooNames) func rlooLossMatchesTRL(_ name: String) throws {
        try Self.check(GRPOCase(name, rloo: true))
    }

    static func check(_ c: GRPOCase) throws {
        let (parts, d) = try c.run(logps: c.floats("per_token_logps"), entropies: c.floats("entropies"))
        c.expectLossAndMetrics(parts)
        expectClose(d, c.floats("dloss_dlogps"), 1e-4, "\(c.name) dloss_dlogps")
    }

    /// RLOO's advantages with the k1 KL penalty from the generation-time and reference log-probs:
    /// TRL's advantages and its generation metrics (`kl`, reward metrics) for every RLOO case.
    @Test(arguments: GRPOCase.rlooNames) func rlooAdvantagesWithKLMatchTRL(_ name: String) throws {
        let c = GRPOCase(name, rloo: true)
        let config = try c.rlooConfig
        let gen = c.input("generation_old_per_token_logps")!, ref = c.input("ref_per_token_logps"), mask = c.mask
        let rows = PolicyLossBatch(width: c.C, logps: gen, mask: mask, advantages: Array(repeating: 0, count: c.B))
        let kl = rows.maskedRowSums { Double(gen[$0]) - Double(ref?[$0] ?? 0) }
        let a = try GroupAdvantage.rloo(rewards: c.input("rewards")!.map { [Double($0)] }, groupSize: 4, names: ["reward"],
                                        klPerRow: kl, klTokens: mask.filter { $0 }.count, config: config)
        let e = c.input("advantages")!.map(Double.init)
        for (i, (x, y)) in zip(a.advantages, e).enumerated() {
            #expect(withinAbsolute(x, y, GRPOOracle.advantageTolerance(y)), "\(name) advantage \(i): \(x) vs \(y)")
        }
        let metrics = Dictionary(uniqueKeysWithValues: a.metrics)
        for key in ["kl", "reward", "reward_std", "frac_reward_zero_std", "rewards/reward/mean", "rewards/reward/std"] {
            guard let x = c.json["metrics_generation"]![key]?.double else { #expect(metrics[key] == nil, "\(name) \(key)"); continue }
            let got = metrics[key] ?? .nan
            #expect(withinAbsolute(got, x, GRPOOracle.metricTolerance(x)), "\(name) \(key): \(got) vs \(x)")
        }
    }

    /// Masked positions are ignored whatever they hold (TRL has 0 there; a campaign may not).
    @Test func maskedPositionsAreIgnored() throws {
        let c = GRPOCase("grpo_kl_cliphigh")
        let (clean, d) = try c.run(logps: c.floats("per_token_logps"), entropies: c.floats("entropies"))
        let garbage = zip(c.floats("per_token_logps"), c.mask).map { $1 ? $0 : -123 }
        let (dirty, d2) = try c.run(logps: garbage, entropies: c.floats("entropies"))
        #expect(clean[0].loss == dirty[0].loss)
        #expect(d == d2)
    }

    /// On-policy (no old log-probs) the ratio is exactly 1 but the gradient still flows: dapo with
    /// β = 0 gives −A / N per token.
    @Test func onPolicyGradientIsAdvantageOverTokens() throws {
        var config = GRPOConfig()
        config.beta = 0
        let batch = PolicyLossBatch(width: 2, logps: [-1, -2, -3, 0], mask: [true, true, true, false], advantages: [0.5, -2])
        let r = try GRPOLoss.compute(batch, scaling: PolicyLossScaling(numItemsInBatch: 3), config: config)
        let expected: [Float] = [Float(-0.5 / 3), Float(-0.5 / 3), Float(2.0 / 3), 0]
        #expect(r.dLogps == expected)
        #expect(abs(r.loss - (-0.5 * 2 + 2) / 3) < 1e-12)
        #expect((try? GRPOLoss.compute(batch, scaling: PolicyLossScaling(numItemsInBatch: 3), config: GRPOConfig.withBeta(0.1))) == nil)
    }
}

/// Behaviours of TRL's code the fixture set does not reach, checked on hand-made batches.
struct GRPOLossEdgeTests {
    static func config(_ type: GRPOLossType, _ edit: (inout GRPOConfig) -> Void = { _ in }) -> GRPOConfig {
        var c = GRPOConfig()
        c.lossType = type
        edit(&c)
        return c
    }

    static func metric(_ r: PolicyLossResult, _ key: String) -> Double? { r.metrics.first { $0.0 == key }?.1 }

    /// `delta` is `torch.clamp(coef_1, max: delta)`: at r == delta the gradient passes whole (a `min`
    /// would halve it); and the clip metrics test the capped ratio.
    @Test func deltaIsAClampForGradientAndMetrics() throws {
        let onPolicy = PolicyLossBatch(width: 1, logps: [-2], mask: [true], advantages: [-1])
        let tie = try GRPOLoss.compute(onPolicy, scaling: PolicyLossScaling(numItemsInBatch: 1), config: Self.config(.dapo) { $0.delta = 1 })
        #expect(tie.dLogps == [1])
        let moved = PolicyLossBatch(width: 1, logps: [Float(log(2.0)) - 3], mask: [true], oldLogps: [-3], advantages: [1])
        let capped = try GRPOLoss.compute(moved, scaling: PolicyLossScaling(numItemsInBatch: 1), config: Self.config(.grpo) {
            $0.delta = 1.1; $0.epsilonHigh = 0.28
        })
        #expect(Self.metric(capped, "clip_ratio/high_mean") == 0)
        let uncapped = try GRPOLoss.compute(moved, scaling: PolicyLossScaling(numItemsInBatch: 1), config: Self.config(.grpo))
        #expect(Self.metric(uncapped, "clip_ratio/high_mean") == 1)
    }

    /// VESPO's weight is exp of a float32 in TRL: an overflow becomes 0 (`nan_to_num`), not a huge step.
    @Test func vespoOverflowingWeightIsZero() throws {
        let batch = PolicyLossBatch(width: 2, logps: [-1, -1], mask: [true, true], oldLogps: [-2.5, -2.5], advantages: [1])
        let r = try GRPOLoss.compute(batch, scaling: PolicyLossScaling(numItemsInBatch: 2), config: Self.config(.vespo) {
            $0.vespoKPos = 40; $0.vespoLambdaPos = 0
        })
        #expect(Self.metric(r, "vespo/phi_seq_mean") == 0)
        #expect(r.dLogps == [0, 0])
        let normal = try GRPOLoss.compute(batch, scaling: PolicyLossScaling(numItemsInBatch: 2), config: Self.config(.vespo))
        #expect((Self.metric(normal, "vespo/phi_seq_mean") ?? 0) > 0)
    }

    /// `clip_ratio/low_min`: token level skips rows without tokens (NaN, nanmin); sequence level keeps
    /// them (their ratio is 1, not clipped).
    @Test func lowMinOverRowsWithoutTokens() throws {
        let old = Float(-3 - log(0.5))
        let batch = PolicyLossBatch(width: 2, logps: [-3, -3, 0, 0], mask: [true, true, false, false], oldLogps: [old, old, 0, 0],
                                    advantages: [-1, 1])
        let token = try GRPOLoss.compute(batch, scaling: PolicyLossScaling(numItemsInBatch: 2), config: Self.config(.grpo))
        #expect(Self.metric(token, "clip_ratio/low_min") == 1)
        #expect(Self.metric(token, "clip_ratio/low_mean") == 1)
        let sequence = try GRPOLoss.compute(batch, scaling: PolicyLossScaling(numItemsInBatch: 2), config: Self.config(.grpo) {
            $0.importanceSamplingLevel = .sequence
        })
        #expect(Self.metric(sequence, "clip_ratio/low_min") == 0)
        #expect(Self.metric(sequence, "clip_ratio/low_mean") == 0.5)
    }
}

extension GRPOConfig {
    static func withBeta(_ beta: Double) -> GRPOConfig { var c = GRPOConfig(); c.beta = beta; return c }
}
