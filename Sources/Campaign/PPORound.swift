// PPO rounds, TRL's PPOTrainer (trl 1.12) on the campaign's loop. After sampling, labelling and the
// reference log-probs, the value model scores every response position; `PPO.advantages` turns the
// scores, the per-token KL penalty and the values into whitened advantages and returns, which the
// round's buffer stores with the values; `PPOUpdate.run` then runs epochs of clipped minibatch
// updates of the policy and the value model from the buffer's records alone, so `rondo replay`
// reproduces the update bit for bit, as for DPO. `PPORound` is the round algorithm; the update and its
// step are in PPOUpdate.swift.
//
// Where Rondo differs from TRL, on purpose:
// - The policy and the value model keep separate AdamW states and clip their gradients separately
//   (OpenRLHF's actor and critic do the same); TRL wraps both in one module with one optimizer. The
//   loss and its gradients are the same.
// - The rollout log-probs are the sampler's (temperature 1) instead of a second forward pass; the
//   gap to the training forward is ≤ 1e-4 relative (Sampler.swift documents it).
// - The response width T is `sampling.max_new_tokens`. TRL generates exactly response_length tokens
//   and pads after the stop token, so its T is the same and every row's advantages depend on that
//   row alone, except for the whitening over the round.

import Foundation
import Kernels
import Model
import Rollouts
import Training

// MARK: The round algorithm

final class PPORound: RoundAlgorithm {
    static let kind = AlgorithmKind.ppo
    static let statusColumns = ["objective/scores", "objective/kl_coef"]
    static let rowsPhase = (name: "values", key: "time/values_s")
    /// Every sample's score lands on its last token: PPO has no notion of an unscored sample.
    static let needsEveryScore = true
    static let valueDirectory = "value"
    static let valueOptimizerFile = "value_optimizer.safetensors"
    static let stateFiles = [valueOptimizerFile, valueDirectory]

    let campaign: Campaign
    let algorithm: AlgorithmSection
    /// The value model and its optimizer: round 0's start, or the previous round's.
    var value: (model: LlamaModel, optimizer: AdamW)?
    /// The KL coefficient the next round uses.
    var nextKLCoef: Double?

    init(campaign: Campaign, algorithm: AlgorithmSection) {
        self.campaign = campaign
        self.algorithm = algorithm
    }

    var width: Int { campaign.config.sampling.maxNewTokens }

    static func validate(_ config: CampaignConfig, _ bad: (String, String) -> CampaignError) throws {
        let a = config.algorithm.ppo
        if a.klCoef < 0 { throw bad("algorithm.kl_coef", "must be ≥ 0") }
        if let t = a.klTarget, t <= 0 { throw bad("algorithm.kl_target", "must be > 0 (or omitted for a fixed kl_coef)") }
        if a.klHorizon <= 0 { throw bad("algorithm.kl_horizon", "must be > 0") }
        try config.trainingCheck { try a.loss.validate(name: $0) }
        if config.prompts.perRound * config.sampling.n < 2 {
            throw bad("prompts.per_round", "× sampling.n must be ≥ 2 (PPO whitens advantages over the round's samples)")
        }
    }

    func saveInitialState(into dir: URL, state: inout RoundState) throws {
        let v = try initialValueModel()
        value = (v, AdamW(layout: v.layout, config: campaign.adamwConfig))
        nextKLCoef = algorithm.ppo.klCoef
        _ = try saveState(into: dir, state: &state)
    }

    func loadState(round r: Int, state: RoundState) throws {
        let dir = campaign.store.roundURL(r)
        let m = try ModelDirectory.load(dir.appendingPathComponent(Self.valueDirectory))
        let model = LlamaModel(config: m.config, parameters: m.parameters)
        let opt = try AdamW.load(from: dir, fileName: Self.valueOptimizerFile, layout: model.layout, config: campaign.adamwConfig)
        value = (model, opt)
    }

    /// Values, advantages and returns (stored in the buffer), and the next KL coefficient.
    func buildRows(_ records: inout [SampleRecord], round r: Int, previous: RoundState) throws -> RoundRows {
        let values = try campaign.gatherBatches(batchSize: 16) { owns in
            try PPOUpdate.values(value!.model, prompts: records.map(\.promptIDs), responses: records.map(\.responseIDs),
                                 width: width, batchSize: 16, owns: owns)
        }
        let coef = previous.klCoef ?? algorithm.ppo.klCoef
        var objective = try PPOUpdate.attachAdvantages(&records, values: values, width: width, klCoef: coef, config: algorithm.ppo.loss)
        let kl = objective.first { $0.0 == "objective/kl" }?.1 ?? .nan
        nextKLCoef = PPORound.nextKLCoef(coef, observedKL: kl, target: algorithm.ppo.klTarget, horizon: algorithm.ppo.klHorizon,
                                         samples: records.count)
        objective.append(("objective/kl_coef", coef))
        return RoundRows(metrics: objective, summary: "\(records.count) samples, PPO update")
    }

    /// Advantages are recomputed from the buffer (values, log-probs, scores) with the replay's
    /// algorithm, so an override of gamma, lam or kl_coef takes effect; without one they must equal
    /// the stored ones.
    func replayRows(_ records: inout [SampleRecord], pairs: [PairRecord], previous: RoundState,
                    campaign base: AlgorithmSection) throws -> ReplayRows {
        let k = algorithm.ppo.klCoef
        let coef = k != base.ppo.klCoef ? k : (previous.klCoef ?? k)
        let stored = records
        let metrics = try PPOUpdate.attachAdvantages(&records, values: stored.map { $0.values ?? [] }, width: width, klCoef: coef,
                                                     config: algorithm.ppo.loss)
        let match = zip(records, stored).allSatisfy { $0.advantages == $1.advantages && $0.returns == $1.returns }
        return ReplayRows(metrics: metrics,
                          report: "advantages and returns recomputed from the buffer \(match ? "match" : "DIFFER from") the stored ones\n",
                          matchesBuffer: match)
    }

    func update(policy: PolicyModel, optimizer: AdamW, samples: [SampleRecord], pairs: [PairRecord], round r: Int,
                shouldStop: UpdateGate) throws -> [(String, Double)] {
        try PPOUpdate.run(policy: policy.model, policyOptimizer: optimizer, value: value!.model, valueOptimizer: value!.optimizer,
                          samples: samples, width: width, algorithm: algorithm, seed: campaign.config.seed, round: r,
                          reducer: campaign.reducer, shouldStop: shouldStop)
    }

    /// Writes value/ and value_optimizer.safetensors into `dir`, and the next KL coefficient into `state`.
    func saveState(into dir: URL, state: inout RoundState) throws -> [String] {
        let (model, optimizer) = value!
        let v = dir.appendingPathComponent(Self.valueDirectory)
        try ModelDirectory.save(config: model.config, parameters: model.parameters, to: v,
                                copyingAuxiliaryFilesFrom: campaign.modelSource)
        try optimizer.save(to: dir, fileName: Self.valueOptimizerFile)
        state.klCoef = nextKLCoef
        return ["\(Self.valueDirectory)/model.safetensors", Self.valueOptimizerFile]
    }

    /// The value model of round 0: `algorithm.value_model` (`policy` or a model directory), by default the
    /// labeller's reward model when it has one, else the policy. A causal LM gets its trunk with a fresh
    /// value head (RewardJob's initialisation, seeded by the campaign seed).
    func initialValueModel() throws -> LlamaModel {
        let c = campaign.config
        let source = algorithm.ppo.valueModel ?? (c.labeller.type == .rewardModel ? c.labeller.model! : "policy")
        let dir = source == "policy" ? campaign.modelSource : URL(fileURLWithPath: source)
        let (vc, p) = try ModelDirectory.load(dir).asRewardModel(seed: c.seed)
        guard vc.vocabSize == campaign.initial.config.vocabSize else {
            throw CampaignError("\(dir.path): the value model's vocabulary (\(vc.vocabSize)) differs from the policy's (\(campaign.initial.config.vocabSize)); it must read the same token ids")
        }
        return LlamaModel(config: vc, parameters: p)
    }

    /// Ziegler et al. (2019)'s adaptive KL controller (TRL's AdaptiveKLController): the coefficient moves
    /// towards the value that keeps the observed KL per response at `target`; fixed when target is nil.
    static func nextKLCoef(_ coef: Double, observedKL: Double, target: Double?, horizon: Double, samples: Int) -> Double {
        guard let target, observedKL.isFinite else { return coef }
        let error = min(max(observedKL / target - 1, -0.2), 0.2)
        return coef * (1 + error * Double(samples) / horizon)
    }
}
