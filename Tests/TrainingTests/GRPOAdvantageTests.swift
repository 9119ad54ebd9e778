// GRPO and RLOO advantages and reward metrics against TRL 1.16 (Tests/Fixtures/grpo, `cases.advantages`):
// every scaling, both multi-reward aggregations, unscorable rows, every RLOO option; and the config
// decoding of TRL's names, defaults and boolean `scale_rewards` forms.

import Foundation
import Model
import Testing
import TestSupport
@testable import Training

struct GRPOAdvantageTests {
    static let cases = GRPOOracle.cases["advantages"]!
    static let g = cases["num_generations"]!.int!

    /// Rows of one reward function each from a flat list (null → NaN).
    static func rows(_ v: JSONValue?) -> [[Double]] { GRPOOracle.floats(v).map { [Double($0)] } }

    /// Compares advantages and every metric the fixture logged.
    static func expectMatches(_ got: GroupAdvantages, _ expected: JSONValue, _ what: String) {
        let e = GRPOOracle.floats(expected["advantages"]).map(Double.init)
        #expect(got.advantages.count == e.count, "\(what): \(got.advantages.count) advantages, expected \(e.count)")
        for (i, (a, x)) in zip(got.advantages, e).enumerated() {
            #expect(withinAbsolute(a, x, GRPOOracle.advantageTolerance(x)), "\(what) advantage \(i): \(a) vs \(x)")
        }
        let metrics = Dictionary(uniqueKeysWithValues: got.metrics)
        for (key, value) in expected["metrics"]?.object ?? [:] {
            let x = value.double!
            guard let a = metrics[key] else { Issue.record("\(what): metric \(key) missing"); continue }
            #expect(withinAbsolute(a, x, GRPOOracle.metricTolerance(x)), "\(what) \(key): \(a) vs \(x)")
        }
    }

    static func grpoConfig(_ scaling: RewardScaling, _ aggregation: MultiObjectiveAggregation = .sumThenNormalize,
                           weights: [Double]? = nil) -> GRPOConfig {
        var c = GRPOConfig()
        c.scaleRewards = scaling; c.multiObjectiveAggregation = aggregation; c.rewardWeights = weights
        return c
    }

    @Test(arguments: RewardScaling.allCases) func grpoScaling(_ scaling: RewardScaling) throws {
        let a = try GroupAdvantage.grpo(rewards: Self.rows(Self.cases["rewards_flat"]), groupSize: Self.g, names: ["reward"],
                                        config: Self.grpoConfig(scaling))
        Self.expectMatches(a, Self.cases["grpo"]![scaling.rawValue]!, "grpo.\(scaling.rawValue)")
    }

    @Test(arguments: MultiObjectiveAggregation.allCases) func grpoMultiReward(_ aggregation: MultiObjectiveAggregation) throws {
        let m = Self.cases["grpo_multi_reward"]!
        let rewards = zip(GRPOOracle.floats(m["rewards_a"]), GRPOOracle.floats(m["rewards_b"])).map { [Double($0), Double($1)] }
        let weights = GRPOOracle.floats(m["reward_weights"]).map(Double.init)
        let a = try GroupAdvantage.grpo(rewards: rewards, groupSize: Self.g, names: ["a", "b"],
                                        config: Self.grpoConfig(.group, aggregation, weights: weights))
        Self.expectMatches(a, m[aggregation.rawValue]!, "grpo_multi_reward.\(aggregation.rawValue)")
    }

    @Test(arguments: [RewardScaling.group, .batch]) func grpoUnscorableRows(_ scaling: RewardScaling) throws {
        let u = Self.cases["grpo_unscorable"]!
        let a = try GroupAdvantage.grpo(rewards: Self.rows(u["rewards"]), groupSize: Self.g, names: ["reward"],
                                        config: Self.grpoConfig(scaling))
        Self.expectMatches(a, u[scaling.rawValue]!, "grpo_unscorable.\(scaling.rawValue)")
    }

    @Test(arguments: ["plain", "normalize_advantages", "reward_clip_range", "unscorable"]) func rloo(_ name: String) throws {
        let r = Self.cases["rloo"]![name]!
        let config = try decodeConfig(RLOOConfig.self, r["config"]!.object!.merging(["beta": .number(0)]) { a, _ in a })
        let rewards = Self.rows(r["rewards"] ?? Self.cases["rewards_flat"])
        let a = try GroupAdvantage.rloo(rewards: rewards, groupSize: Self.g, names: ["reward"], config: config)
        Self.expectMatches(a, r, "rloo.\(name)")
    }

    @Test func scaleRewardsBooleanFormsMapAsInTRL() throws {
        let forms = Self.cases["grpo_scale_rewards_bool_forms"]!
        for (key, json) in [("True", JSONValue.bool(true)), ("False", .bool(false))] {
            let c = try decodeConfig(GRPOConfig.self, ["scale_rewards": json])
            #expect(c.scaleRewards.rawValue == forms[key]!["maps_to"]!.string!)
        }
    }

    @Test func defaultsAreTRLs() throws {
        let c = try decodeConfig(GRPOConfig.self, [:])
        #expect(c == GRPOConfig())
        #expect(c.lossType == .dapo && c.beta == 0 && c.epsilon == 0.2 && c.epsilonHigh == nil && c.effectiveEpsilonHigh == 0.2)
        #expect(c.importanceSamplingLevel == .token && c.scaleRewards == .group && c.useBiasCorrectionKL && !c.maskTruncatedCompletions)
        #expect(c.temperature == 1 && c.numIterations == 1 && c.delta == nil)
        let r = try decodeConfig(RLOOConfig.self, [:])
        #expect(r == RLOOConfig() && r.beta == 0.05 && !r.normalizeAdvantages && r.rewardClipRange == nil)
        #expect(GRPOLossType.allCases.map(\.rawValue) == ["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"])
    }

    /// A written config (e.g. into a round checkpoint) reads back equal, under TRL's key names.
    @Test func configsRoundTripWithTRLKeys() throws {
        var c = GRPOConfig()
        c.lossType = .drGRPO; c.epsilonHigh = 0.28; c.delta = 1.5; c.scaleRewards = .batch; c.useBiasCorrectionKL = false
        c.importanceSamplingLevel = .sequence; c.rewardWeights = [1, 0.5]; c.maxCompletionLength = 64
        let data = try JSONEncoder().encode(c)
        let keys = try JSONDecoder().decode([String: JSONValue].self, from: data)
        #expect(keys["loss_type"] == .string("dr_grpo") && keys["use_bias_correction_kl"] == .bool(false))
        #expect(try JSONDecoder().decode(GRPOConfig.self, from: data) == c)
        var r = RLOOConfig()
        r.rewardClipRange = [-1, 2]; r.normalizeAdvantages = true
        #expect(try JSONDecoder().decode(RLOOConfig.self, from: JSONEncoder().encode(r)) == r)
    }

    @Test func unknownKeysAndBadValuesAreClearErrors() throws {
        #expect(throws: DecodingError.self) { try decodeConfig(GRPOConfig.self, ["loss": .string("dapo")]) }
        #expect(throws: DecodingError.self) { try decodeConfig(GRPOConfig.self, ["loss_type": .string("ppo")]) }
        func message(_ c: GRPOConfig) -> String {
            do { try c.validate(); return "" } catch { return "\(error)" }
        }
        var c = GRPOConfig(); c.epsilon = 1.5
        #expect(message(c).contains("--epsilon must be in [0, 1)"))
        c = GRPOConfig(); c.beta = .nan
        #expect(message(c).contains("--beta"))
        c = GRPOConfig(); c.delta = 0.9
        #expect(message(c).contains("--delta must be a finite number > 1"))
        c.delta = 1.1
        #expect(message(c) == "")
        c = GRPOConfig(); c.lossType = .cispo
        #expect(message(c).contains("--epsilon-high"))
        var r = RLOOConfig(); r.rewardClipRange = [2, 1]
        #expect((try? r.validate()) == nil)
        #expect(throws: JobError.self) {
            try GroupAdvantage.grpo(rewards: [[1], [2], [3]], groupSize: 2, names: ["reward"], config: GRPOConfig())
        }
    }
}

/// Decodes `T` from a JSON object (how a campaign section or training_args.json reaches it).
func decodeConfig<T: Decodable>(_ type: T.Type, _ object: [String: JSONValue]) throws -> T {
    try JSONDecoder().decode(T.self, from: JSONEncoder().encode(JSONValue.object(object)))
}
