// What differs between DPO, PPO and any later algorithm in a round, behind one protocol: the round
// loop (Campaign.runRound) runs the same phases for every algorithm and never names one. Adding an
// algorithm is its own file with a `RoundAlgorithm` type, a case in `AlgorithmKind` and one line in
// `RoundAlgorithms.registry` (as mlx-swift-lm's LLMTypeRegistry adds an architecture).

import Foundation
import Model
import Rollouts
import Training

/// The labelled samples of a round turned into what the update trains on.
struct RoundRows {
    /// Preference pairs the buffer stores after the samples (empty for algorithms without pairs).
    var pairs: [PairRecord] = []
    /// Metrics of this step (e.g. PPO's `objective/*`), written with the round's metrics.
    var metrics: [(String, Double)] = []
    /// One line for the log before the update ("12 pairs, updating").
    var summary: String
}

/// What `rondo replay` found when it rebuilt a round's rows from the buffer.
struct ReplayRows {
    var metrics: [(String, Double)] = []
    /// Lines for the replay report.
    var report = ""
    /// Whether what the buffer stores equals what the rebuild computed.
    var matchesBuffer = true
}

/// Asked before optimizer step `done` (0-based) of `total` planned: true stops the update there.
typealias UpdateGate = (_ done: Int, _ total: Int) -> Bool

/// A stop request arrived inside a phase (e.g. between optimizer steps of the update): the round is
/// abandoned and nothing of it is committed.
struct RoundInterrupted: Error {}

/// One round algorithm. An instance lives for one round (or one replay): it loads the state the
/// previous round left, builds the rows, runs the update and saves its state into the new round.
protocol RoundAlgorithm: AnyObject {
    /// The `algorithm.type` this type implements.
    static var kind: AlgorithmKind { get }
    /// Metric keys `rondo status` shows for this algorithm after the common ones.
    static var statusColumns: [String] { get }
    /// Files and directories of a round's full state beyond policy/ and optimizer.safetensors, in the
    /// order pruning removes them (`retention`); round 0 has them all.
    static var stateFiles: [String] { get }
    /// The phase that turns labelled samples into rows: its status name and metrics key.
    static var rowsPhase: (name: String, key: String) { get }
    /// Whether every sample must have a score (a judge that leaves some unscored fails the round).
    static var needsEveryScore: Bool { get }
    /// Whether it learns from samples of the starting policy (`sampling.policy: initial`).
    static var acceptsInitialSamples: Bool { get }
    /// Checks of the config that only this algorithm needs; `bad(key, message)` makes the error.
    static func validate(_ config: CampaignConfig, _ bad: (String, String) -> CampaignError) throws

    /// `algorithm` is the campaign's section, or a replay's override of it.
    init(campaign: Campaign, algorithm: AlgorithmSection)

    /// Round 0: writes the extra state round 1 starts from into `dir` and records it in `state`.
    func saveInitialState(into dir: URL, state: inout RoundState) throws
    /// Loads the extra state round `r` (the previous round) committed.
    func loadState(round r: Int, state: RoundState) throws
    /// Online: labelled records (scores in `label`, reference log-probs attached) → rows. May attach
    /// per-token values to the records, which the buffer stores. `phase` times sub-steps.
    func buildRows(_ records: inout [SampleRecord], round r: Int, previous: RoundState) throws -> RoundRows
    /// Replay: the rows rebuilt from the buffer's records with this instance's (maybe overridden)
    /// config; `campaign` is the campaign's own section.
    func replayRows(_ records: inout [SampleRecord], pairs: [PairRecord], previous: RoundState,
                    campaign: AlgorithmSection) throws -> ReplayRows
    /// The update, online and in replay alike: reads only the buffer's records and pairs, the previous
    /// round's weights and optimizer state and the config. `shouldStop` is asked before every optimizer
    /// step (with the steps done and planned, which the update's progress reports); when it answers
    /// true the update throws `RoundInterrupted`. A LoRA `policy` (base + adapter) trains its adapter
    /// only; PPO refuses one (CampaignConfig.validatePolicy).
    func update(policy: PolicyModel, optimizer: AdamW, samples: [SampleRecord], pairs: [PairRecord], round r: Int,
                shouldStop: UpdateGate) throws -> [(String, Double)]
    /// Writes the extra state after the update into `dir`, records it in `state`; returns the files
    /// written (relative to `dir`), which replay compares.
    func saveState(into dir: URL, state: inout RoundState) throws -> [String]
}

extension RoundAlgorithm {
    static var stateFiles: [String] { [] }
    static var needsEveryScore: Bool { false }
    static var acceptsInitialSamples: Bool { false }
    static func validate(_ config: CampaignConfig, _ bad: (String, String) -> CampaignError) throws {}
    func saveInitialState(into dir: URL, state: inout RoundState) throws {}
    func loadState(round r: Int, state: RoundState) throws {}
    func saveState(into dir: URL, state: inout RoundState) throws -> [String] { [] }
}

enum RoundAlgorithms {
    /// Every algorithm a campaign can run, by `algorithm.type`.
    static let registry: [AlgorithmKind: any RoundAlgorithm.Type] = [
        .dpo: DPORound.self,
        .ppo: PPORound.self,
        .grpo: GRPORound.self,
        .rloo: RLOORound.self,
    ]

    /// Every algorithm's extra full-state files.
    static var stateFiles: [String] {
        registry.keys.sorted { $0.rawValue < $1.rawValue }.flatMap { registry[$0]!.stateFiles }
    }

    static func type(of kind: AlgorithmKind) -> any RoundAlgorithm.Type {
        guard let t = registry[kind] else { preconditionFailure("algorithm '\(kind.rawValue)' has no RoundAlgorithm registered") }
        return t
    }
}

extension CampaignConfig {
    /// The seed of round r's streams (sampling, evaluation, the update's example order).
    func roundSeed(_ r: Int) -> UInt64 { Self.roundSeed(seed, r) }
    static func roundSeed(_ seed: UInt64, _ r: Int) -> UInt64 { seed &+ UInt64(r) &* 0x9E37_79B9_7F4A_7C15 }
}

/// The seeded example order and batching of a round's update: `epochs` passes over `examples` rows
/// in minibatches of `batch_size`.
func roundPlan(examples: Int, algorithm a: AlgorithmSection, seed: UInt64) -> TrainingPlan {
    var run = RunOptions()
    run.epochs = a.epochs
    run.batchSize = a.batchSize
    run.seed = seed
    return TrainingPlan(examples: examples, run: run)
}

/// The learning-rate schedule of a campaign's updates: constant after `warmup_steps` over the
/// campaign's first optimizer steps (the optimizer's step count carries over between rounds).
func roundSchedule(_ a: AlgorithmSection) -> LRSchedule {
    LRSchedule(kind: a.optimizer.schedule, peak: a.optimizer.lr, warmupSteps: a.optimizer.warmupSteps, totalSteps: 1 << 40)
}
