// Reward model and policy in cycles (`labeller.refresh`). A refresh campaign carries its reward
// model from round to round: rounds/NNNNNN/reward_model/ (weights) and
// reward_model_optimizer.safetensors (its AdamW state, part of the full state `retention` prunes).
// Round 0 commits the configured model with a fresh optimizer.
//
// A refresh round (every K rounds) runs the phase `rm_refresh` right after sampling, before the
// policy's samples are labelled, so this round's labels come from the refreshed model:
//   1. gold: `samples_per_refresh` samples — whole prompt groups in a seeded prompt order, the last
//      group cut at N — are scored by the gold labeller (and by the reward model before the
//      refresh: rm/proxy_mean, rm/gold_mean, rm/gap = proxy − gold, rm/proxy_gold_corr);
//   2. pairs: within each prompt every two of them whose gold scores differ, the higher chosen
//      (ties and unscored samples are dropped); the pairs of the first `holdout_fraction` of the
//      prompts in that order are held out (never trained on);
//   3. training: `epochs` passes over the dataset (RewardDataset.swift: every round's train pairs so
//      far) with `rondo rm train`'s Bradley–Terry step (RewardJob.microBatch), AdamW continuing from
//      the previous round's state; rm/gold_pair_accuracy_before/after on the held-out pairs.
// Step 3 reads only the stored pairs and the previous round's reward model, so `rondo replay`
// reproduces the new reward model bit for bit.

import Foundation
import Kernels
import Labeling
import Model
import Rollouts
import Sampling
import Training

/// A campaign's reward model and its optimizer state, and what this round's refresh added.
final class RewardModelState {
    static let directory = "reward_model"
    static let optimizerFile = "reward_model_optimizer.safetensors"

    let model: LlamaModel
    let optimizer: AdamW
    /// This round's gold pairs (written into the round as rm_pairs.jsonl.zst); empty without a refresh.
    var newPairs: [GoldPair] = []
    /// rm/* metrics of the round.
    var metrics: [(String, Double)] = []

    init(model: LlamaModel, optimizer: AdamW) { self.model = model; self.optimizer = optimizer }

    /// A labeller scoring with the current weights; its id hashes the weights' bytes.
    func labeller() -> RewardModelLabeller {
        let p = model.parameters
        let sha = sha256(bytes: UnsafeRawBufferPointer(start: p.base, count: p.count * MemoryLayout<Float>.stride))
        return RewardModelLabeller(model: model, weightsSHA256: sha)
    }
}

extension Campaign {
    /// The refresh section of a reward_model labeller, if any.
    var refresh: RefreshSection? { config.labeller.type == .rewardModel ? config.labeller.refresh : nil }

    /// The refresh's optimizer settings: `rondo rm train`'s defaults with the section's learning rate, constant.
    var refreshOptimizer: OptimizerOptions {
        var o = OptimizerOptions(lr: refresh?.learningRate ?? 1e-5)
        o.schedule = .constant
        return o
    }

    /// The configured reward model with a fresh optimizer (what round 0 commits).
    func initialRewardModel() throws -> RewardModelState {
        let m = try ModelDirectory.load(URL(fileURLWithPath: config.labeller.model!))
        let model = LlamaModel(config: m.config, parameters: m.parameters)
        return RewardModelState(model: model, optimizer: AdamW(layout: model.layout, config: refreshOptimizer.adamw))
    }

    /// Round r's reward model and optimizer state.
    func loadRewardModel(round r: Int) throws -> RewardModelState {
        let dir = store.roundURL(r)
        let m = try ModelDirectory.load(dir.appendingPathComponent(RewardModelState.directory))
        let model = LlamaModel(config: m.config, parameters: m.parameters)
        let opt = try AdamW.load(from: dir, fileName: RewardModelState.optimizerFile, layout: model.layout, config: refreshOptimizer.adamw)
        return RewardModelState(model: model, optimizer: opt)
    }

    /// Writes the reward model, its optimizer state and this round's gold pairs into `dir`; returns
    /// the files replay compares.
    @discardableResult
    func saveRewardModel(_ s: RewardModelState, into dir: URL) throws -> [String] {
        try ModelDirectory.save(config: s.model.config, parameters: s.model.parameters,
                                to: dir.appendingPathComponent(RewardModelState.directory),
                                copyingAuxiliaryFilesFrom: URL(fileURLWithPath: config.labeller.model!))
        try s.optimizer.save(to: dir, fileName: RewardModelState.optimizerFile)
        if !s.newPairs.isEmpty { try RewardDataset.write(s.newPairs, to: dir.appendingPathComponent(RewardDataset.fileName)) }
        return ["\(RewardModelState.directory)/model.safetensors", RewardModelState.optimizerFile]
    }

    /// The rm_refresh phase of round r (steps 1–3 of the file header).
    func refreshRewardModel(_ rm: RewardModelState, round r: Int, samples: [Sample], texts: [String], picked: [Int],
                            clock: PhaseClock) throws {
        let rf = refresh!
        let (chosen, promptOrder) = goldSamples(samples, count: rf.samplesPerRefresh, round: r)
        let subset = chosen.map { samples[$0] }, subTexts = chosen.map { texts[$0] }
        log("round \(r): rm_refresh: gold labels for \(chosen.count) samples of \(promptOrder.count) prompts")
        let gold = try label(r, subset, subTexts, picked, with: goldLabeller!)
        let proxy = try label(r, subset, subTexts, picked, with: rm.labeller())
        let scored = gold.indices.filter { gold[$0].isFinite && proxy[$0].isFinite }
        let pm = mean(scored.map { proxy[$0] }), gm = mean(scored.map { gold[$0] })
        rm.metrics = [("rm/gold_samples", Double(scored.count)), ("rm/proxy_mean", pm), ("rm/gold_mean", gm), ("rm/gap", pm - gm),
                      ("rm/proxy_gold_corr", pearson(scored.map { proxy[$0] }, scored.map { gold[$0] }))]
        let heldOut = Set(promptOrder.prefix(holdoutPrompts(promptOrder.count, rf.holdoutFraction)))
        rm.newPairs = goldPairs(subset, ids: chosen, gold: gold, round: r, heldOut: heldOut, prompts: picked)
        rm.metrics += try trainRewardModel(rm, round: r, clock: clock)
    }

    /// Prompts held out of `n`: the fraction rounded, at least one when the fraction is > 0, and
    /// never all of them when there are two or more.
    func holdoutPrompts(_ n: Int, _ fraction: Double) -> Int {
        guard fraction > 0, n > 0 else { return 0 }
        return min(max(1, Int((fraction * Double(n)).rounded())), max(n - 1, 1))
    }

    /// Step 1's choice: indices into `samples` (ascending) and the prompt order they were taken in.
    func goldSamples(_ samples: [Sample], count: Int, round r: Int) -> ([Int], [Int]) {
        var groups: [Int: [Int]] = [:]
        for (i, s) in samples.enumerated() { groups[s.promptIndex, default: []].append(i) }
        let prompts = groups.keys.sorted()
        var run = RunOptions()
        run.seed = config.roundSeed(r) ^ 0x524D_5246_5245_5348  // "RMFRESH"
        var taken: [Int] = [], order: [Int] = []
        for k in TrainingPlan(examples: prompts.count, run: run).order(epoch: 0) where taken.count < count {
            let p = prompts[k]
            order.append(p)
            taken += groups[p]!.prefix(count - taken.count)
        }
        return (taken.sorted(), order)
    }

    /// Step 2: the gold pairs of the chosen samples, by prompt index then sample order.
    func goldPairs(_ subset: [Sample], ids: [Int], gold: [Float], round r: Int, heldOut: Set<Int>, prompts: [Int]) -> [GoldPair] {
        var pairs: [GoldPair] = []
        for i in subset.indices {
            for j in subset.indices where j > i && subset[j].promptIndex == subset[i].promptIndex {
                guard gold[i].isFinite, gold[j].isFinite, gold[i] != gold[j] else { continue }
                let (c, x) = gold[i] > gold[j] ? (i, j) : (j, i)
                let p = subset[i].promptIndex
                pairs.append(GoldPair(round: r, promptIndex: p, chosenSample: ids[c], rejectedSample: ids[x],
                                      goldChosen: gold[c], goldRejected: gold[x], split: heldOut.contains(p) ? "holdout" : "train",
                                      promptIDs: train[prompts[p]].ids, chosenIDs: subset[c].tokens, rejectedIDs: subset[x].tokens))
            }
        }
        return pairs
    }

    /// Step 3, online and in replay: trains `rm` on the dataset of rounds before r plus `rm.newPairs`;
    /// returns the rm/* training metrics.
    func trainRewardModel(_ rm: RewardModelState, round r: Int, clock: PhaseClock?) throws -> [(String, Double)] {
        let rf = refresh!
        let earlier = try RewardDataset.pairs(through: r - 1, store: store).filter { $0.round < r }
        let trainSet = (earlier + rm.newPairs).filter { !$0.isHoldout }.map(\.example)
        let holdout = rm.newPairs.filter(\.isHoldout).map(\.example)
        let before = try holdoutAccuracy(rm.model, holdout, rf.batchSize)
        var (steps, loss) = (0, Double.nan)
        if !trainSet.isEmpty {
            (steps, loss) = try trainSteps(rm, trainSet, round: r, progress: clock?.progress(total: 0, unit: "steps", log: log))
        }
        let after = try holdoutAccuracy(rm.model, holdout, rf.batchSize)
        return [("rm/new_pairs", Double(rm.newPairs.count)), ("rm/holdout_pairs", Double(holdout.count)),
                ("rm/dataset_pairs", Double(trainSet.count)), ("rm/steps", Double(steps)), ("rm/train_loss", loss),
                ("rm/gold_pair_accuracy_before", before), ("rm/gold_pair_accuracy_after", after)]
    }

    /// `epochs` passes of Bradley–Terry steps over `trainSet` in a seeded order, continuing `rm`'s
    /// AdamW; returns the steps and the mean loss. A stop request between steps throws RoundInterrupted.
    func trainSteps(_ rm: RewardModelState, _ trainSet: [PairExample], round r: Int, progress: PhaseProgress?) throws -> (Int, Double) {
        let rf = refresh!, o = refreshOptimizer
        var run = RunOptions()
        run.epochs = rf.epochs; run.batchSize = rf.batchSize; run.seed = config.roundSeed(r) ^ 0x524D_5452_4149_4E00  // "RMTRAIN"
        let plan = TrainingPlan(examples: trainSet.count, run: run)
        let trainer = Trainer(model: rm.model, optimizer: rm.optimizer,
                              schedule: LRSchedule(kind: .constant, peak: o.lr, totalSteps: 1 << 40), maxGradNorm: o.maxGradNorm)
        let maxLen = trainSet.map { max($0.chosen.count, $0.rejected.count) }.max() ?? 1
        let ws = LlamaWorkspace(config: rm.model.config, maxBatch: 2 * min(rf.batchSize, trainSet.count), maxSeqLen: maxLen)
        var metrics = RewardMetrics()
        let completed = try plan.runSteps { s, micro in
            progress?.set(done: s, total: plan.lastStep)
            if stop.isSet { return .stop }
            let ex = micro.map { $0.map { trainSet[$0] } }
            let pairs = ex.reduce(0) { $0 + $1.count }
            _ = try trainer.step(microBatches: ex.count, context: "round \(r), rm_refresh step \(s + 1)") { i in
                try RewardJob.microBatch(ex[i], model: rm.model, workspace: ws, pairsInStep: pairs, gradients: trainer.gradients,
                                         metrics: &metrics)
            }
            return .proceed
        }
        guard completed else { throw RoundInterrupted() }
        return (plan.lastStep, metrics.values[0].1)
    }

    /// Pair accuracy (score(chosen) > score(rejected)) on `pairs`; NaN without pairs.
    func holdoutAccuracy(_ model: LlamaModel, _ pairs: [PairExample], _ batchSize: Int) throws -> Double {
        guard !pairs.isEmpty else { return .nan }
        return try RewardJob.evaluate(model: model, examples: pairs, batchSize: batchSize).first { $0.0 == "accuracy" }!.1
    }
}

/// Mean of finite values as Double (NaN when empty).
private func mean(_ xs: [Float]) -> Double { xs.isEmpty ? .nan : xs.reduce(0.0) { $0 + Double($1) } / Double(xs.count) }
