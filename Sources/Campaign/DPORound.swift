// DPO rounds: the labelled samples become best-vs-worst preference pairs (PairBuilder), and the
// update runs `epochs` passes of DPO over them against the reference log-probs the buffer stores.
// The same update runs online (after labelling) and in `rondo replay`, so replay reproduces the
// round bit for bit. Its inputs are exactly the previous round's weights and optimizer state, the
// buffer's pairs and samples (token ids and the stored per-token reference log-probs), the
// algorithm section and the seed.

import Foundation
import Kernels
import Model
import Rollouts
import Training

final class DPORound: RoundAlgorithm {
    static let kind = AlgorithmKind.dpo
    static let statusColumns = ["train/pairs"]
    static let rowsPhase = (name: "pairs", key: "time/pairs_s")
    static let acceptsInitialSamples = true

    let algorithm: AlgorithmSection
    let pairing: PairsSection
    let seed: UInt64
    /// The ranks' gradient sum (nil: one process).
    let reducer: GradientReducer?

    init(campaign: Campaign, algorithm: AlgorithmSection) {
        self.algorithm = algorithm
        reducer = campaign.reducer
        pairing = campaign.config.pairs
        seed = campaign.config.seed
    }

    static func validate(_ config: CampaignConfig, _ bad: (String, String) -> CampaignError) throws {
        if config.sampling.n < 2 { throw bad("sampling.n", "must be ≥ 2 (pairs need two responses per prompt)") }
        try config.trainingCheck { try config.algorithm.dpo.validate(name: $0) }
    }

    func buildRows(_ records: inout [SampleRecord], round r: Int, previous: RoundState) throws -> RoundRows {
        let pairs = PairBuilder(pairing).build(records)
        return RoundRows(pairs: pairs, summary: "\(pairs.count) pairs, updating")
    }

    func replayRows(_ records: inout [SampleRecord], pairs: [PairRecord], previous: RoundState,
                    campaign: AlgorithmSection) throws -> ReplayRows {
        ReplayRows(report: "", matchesBuffer: true)
    }

    func update(policy: PolicyModel, optimizer: AdamW, samples: [SampleRecord], pairs: [PairRecord], round r: Int,
                shouldStop: UpdateGate) throws -> [(String, Double)] {
        let (examples, refSums) = try Self.examples(samples: samples, pairs: pairs)
        return try Self.run(model: policy.model, adapter: policy.adapter, optimizer: optimizer, examples: examples,
                            referenceSums: refSums, algorithm: algorithm, seed: seed, round: r, reducer: reducer,
                            shouldStop: shouldStop)
    }

    /// Preference examples of `pairs` and their reference sums (Σ ref_logprobs in token order).
    static func examples(samples: [SampleRecord], pairs: [PairRecord]) throws -> ([PreferenceExample], [(Double, Double)]) {
        var ex: [PreferenceExample] = [], ref: [(Double, Double)] = []
        for (k, p) in pairs.enumerated() {
            guard p.chosen < samples.count, p.rejected < samples.count else {
                throw CampaignError("pair \(k) refers to sample \(max(p.chosen, p.rejected)), but the buffer has \(samples.count)")
            }
            let c = samples[p.chosen], r = samples[p.rejected]
            guard let rc = c.refLogprobs, let rr = r.refLogprobs else {
                throw CampaignError("pair \(k): samples \(p.chosen)/\(p.rejected) have no ref_logprobs; the buffer cannot drive an update")
            }
            ex.append(PreferenceExample(prompt: c.promptIDs, chosen: c.responseIDs, rejected: r.responseIDs, line: k + 1))
            ref.append((rc.reduce(0.0) { $0 + Double($1) }, rr.reduce(0.0) { $0 + Double($1) }))
        }
        return (ex, ref)
    }

    /// Runs `algorithm.epochs` passes of DPO over the examples; returns TRL-named metrics (means over
    /// the round's pairs and steps). With `adapter`, `model` is the frozen base and only the adapter
    /// trains. With a reducer every step's micro-batches are split over its ranks
    /// (`GradientReducer.part`), each shard normalised by the whole step's pairs and the whole
    /// micro-batch's chosen tokens (RPO), and the metrics' sums are added in rank order.
    static func run(model: LlamaModel, adapter: LoRAAdapter? = nil, optimizer: AdamW, examples: [PreferenceExample],
                    referenceSums: [(Double, Double)], algorithm a: AlgorithmSection, seed: UInt64, round: Int,
                    reducer: GradientReducer? = nil, shouldStop: UpdateGate) throws -> [(String, Double)] {
        guard !examples.isEmpty else { return [("train/pairs", 0), ("train/steps", 0)] }
        let plan = roundPlan(examples: examples.count, algorithm: a, seed: CampaignConfig.roundSeed(seed, round))
        let loss = a.dpo
        let trainer = Trainer(model: model, adapter: adapter, optimizer: optimizer, schedule: roundSchedule(a),
                              maxGradNorm: a.optimizer.maxGradNorm)
        let bs = max(1, min(a.batchSize, examples.count))
        let maxLen = examples.map { $0.prompt.count + max($0.chosen.count, $0.rejected.count) }.max()!
        let ws = LlamaWorkspace(config: model.config, maxBatch: 2 * bs, maxSeqLen: maxLen)
        let lora = adapter.map { LoRAActivations(adapter: $0, maxRows: ws.maxRows) }
        let pad = model.config.batchPadID
        var metrics = [DPOMetrics](repeating: DPOMetrics(), count: reducer?.ranks ?? 1)
        var gradNorm = 0.0, lr = 0.0
        let completed = try plan.runSteps { s, micro in
            if shouldStop(s, plan.lastStep) { return .stop }
            let pairsInStep = micro.reduce(0) { $0 + $1.count }
            let stats = try trainer.step(microBatches: micro.count, reducer: reducer,
                                         context: "round \(round), update step \(s + 1)") { shard, i in
                let idx = reducer?.part(micro[i], shard: shard) ?? micro[i]
                guard !idx.isEmpty else { return 0 }
                let b = DPOJob.batch(idx.map { examples[$0] }, pad: pad)
                let out = try model.forward(b, workspace: ws, lora: lora)
                let refRows = idx.map { referenceSums[$0].0 } + idx.map { referenceSums[$0].1 }
                let nllTokens = reducer.map { _ in micro[i].reduce(0) { n, e in
                    n + max(0, examples[e].prompt.count + examples[e].chosen.count - max(1, examples[e].prompt.count)) } }
                let l = DPOLoss.compute(policyOutput: out, batch: b, referenceLogps: refRows, config: loss,
                                        pairsInStep: pairsInStep, nllTokens: nllTokens, countsNLLTerm: idx.first == micro[i].first,
                                        metrics: &metrics[shard])
                guard l.loss.isFinite else { return l.loss }
                l.outputGradient.withUnsafeBufferPointer {
                    trainer.backward(b, outputGradient: $0, workspace: ws, lora: lora)
                }
                return l.loss
            }
            gradNorm += Double(stats.gradNorm)
            lr = stats.learningRate
            return .proceed
        }
        guard completed else { throw RoundInterrupted() }
        let steps = Double(max(1, plan.lastStep))
        let summed = try reducer.map { r in DPOMetrics(sums: try r.sum(r.localShards.map { metrics[$0].sums })) } ?? metrics[0]
        return summed.values + [("grad_norm", gradNorm / steps), ("learning_rate", lr),
                                 ("train/pairs", Double(examples.count)), ("train/steps", Double(plan.lastStep))]
    }
}

/// Pairs from scored samples (best_vs_worst): per prompt, rank by score (ties: lower sample index
/// first) and pair the k-th best with the k-th worst for k < max_per_prompt, while the pair has
/// distinct samples, a margin ≥ min_margin, and (with skip_ties) different scores.
struct PairBuilder {
    let c: PairsSection
    init(_ c: PairsSection) { self.c = c }

    /// `records` in prompt order, each with its label.
    func build(_ records: [SampleRecord]) -> [PairRecord] {
        let scores = records.map { $0.label?.score ?? .nan }
        var pairs: [PairRecord] = []
        var start = 0
        while start < records.count {
            let p = records[start].promptIndex
            var end = start
            while end < records.count && records[end].promptIndex == p { end += 1 }
            let ranked = (start..<end).filter { scores[$0].isFinite }.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            for k in 0..<min(c.maxPerPrompt, ranked.count / 2) {
                let hi = ranked[k], lo = ranked[ranked.count - 1 - k]
                let margin = scores[hi] - scores[lo]
                if c.skipTies && margin == 0 { break }
                if margin < c.minMargin { break }
                pairs.append(PairRecord(promptIndex: p, chosen: hi, rejected: lo, margin: margin, how: c.strategy.rawValue))
            }
            start = end
        }
        return pairs
    }
}
