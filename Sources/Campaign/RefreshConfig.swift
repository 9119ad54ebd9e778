// `labeller.refresh`: a reward_model labeller trained further during the campaign on gold labels of
// the current policy's samples (RewardRefresh.swift runs it; docs/config.md documents the keys).
//
//   labeller:
//     type: reward_model
//     model: reward
//     refresh: {every: 1, gold: {type: verifier}, samples_per_refresh: 256, epochs: 1,
//               learning_rate: 1.0e-5, holdout_fraction: 0.25, batch_size: 16}

import Foundation

public struct RefreshSection: Codable, Sendable, Equatable {
    /// Refresh in rounds every, 2·every, … (round 0 only evaluates).
    public var every: Int = 1
    /// The gold labeller held in an array of one: a struct cannot hold its own type directly.
    private var golds: [LabellerSection] = [LabellerSection()]
    /// The gold labeller: verifier, command or http.
    public var gold: LabellerSection { get { golds[0] } set { golds = [newValue] } }
    /// Samples of a refresh round labelled by the gold labeller (whole prompt groups, seeded).
    public var samplesPerRefresh: Int = 64
    /// Passes over the reward-model dataset per refresh.
    public var epochs: Int = 1
    /// AdamW learning rate of the refresh (constant; HF defaults for the rest, as `rondo rm train`).
    public var learningRate: Double = 1e-5
    /// Pairs per optimizer step.
    public var batchSize: Int = 16
    /// Fraction of a refresh's prompts whose gold pairs are held out (never trained on) to measure
    /// the reward model before and after the refresh.
    public var holdoutFraction: Double = 0.25

    enum CodingKeys: String, CodingKey, CaseIterable {
        case every, gold, samplesPerRefresh = "samples_per_refresh", epochs, learningRate = "learning_rate"
        case batchSize = "batch_size", holdoutFraction = "holdout_fraction"
    }

    init(gold: LabellerSection = LabellerSection()) { self.gold = gold }

    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = RefreshSection()
        guard c.contains(.gold) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "'gold' is required: the labeller whose scores the reward model learns, e.g. gold: {type: verifier}"))
        }
        gold = try c.decode(LabellerSection.self, forKey: .gold)
        every = try c.value(.every, d.every); samplesPerRefresh = try c.value(.samplesPerRefresh, d.samplesPerRefresh)
        epochs = try c.value(.epochs, d.epochs); learningRate = try c.value(.learningRate, d.learningRate)
        batchSize = try c.value(.batchSize, d.batchSize); holdoutFraction = try c.value(.holdoutFraction, d.holdoutFraction)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(every, forKey: .every); try c.encode(gold, forKey: .gold)
        try c.encode(samplesPerRefresh, forKey: .samplesPerRefresh); try c.encode(epochs, forKey: .epochs)
        try c.encode(learningRate, forKey: .learningRate); try c.encode(batchSize, forKey: .batchSize)
        try c.encode(holdoutFraction, forKey: .holdoutFraction)
    }

    /// Whether round r refreshes the reward model.
    func refreshes(round r: Int) -> Bool { r >= 1 && r % every == 0 }

    /// Checks of the section; `bad(key, message)` makes the error.
    func validate(_ bad: (String, String) -> CampaignError) throws {
        let k = "labeller.refresh"  // the labeller's type was checked by LabellerSection.validate
        if every < 1 { throw bad("\(k).every", "must be ≥ 1 (refresh every K rounds)") }
        if samplesPerRefresh < 2 { throw bad("\(k).samples_per_refresh", "must be ≥ 2 (gold pairs need two samples of a prompt)") }
        if epochs < 1 { throw bad("\(k).epochs", "must be ≥ 1") }
        if !(learningRate > 0) || !learningRate.isFinite { throw bad("\(k).learning_rate", "must be a finite number > 0, got \(learningRate)") }
        if batchSize < 1 { throw bad("\(k).batch_size", "must be ≥ 1") }
        if !(holdoutFraction >= 0 && holdoutFraction < 1) {
            throw bad("\(k).holdout_fraction", "must be in [0, 1) (0 = no held-out pairs, no before/after accuracy), got \(holdoutFraction)")
        }
        if gold.type == .rewardModel {
            throw bad("\(k).gold.type", "must be verifier, command or http (the gold labeller cannot be a reward model)")
        }
        try gold.validate(key: "\(k).gold", bad)
    }
}
