// The update of the policy-gradient rounds (GRPO, RLOO): `passes` seeded passes over the round's
// samples in minibatches of `algorithm.batch_size`, one optimizer step each, through the shared
// step loop. Each minibatch runs the policy at the sampling temperature (log-probs and entropies on
// the [rows, max_new_tokens] grid), the algorithm's loss against what the buffer stores, and the
// backward of its d loss / d log-probs. Reads only the records, so replay runs the same update.

import Foundation
import Model
import Rollouts
import Training

struct PolicyGradientUpdate {
    let algorithm: AlgorithmSection
    /// Passes over the samples (TRL's num_iterations).
    let passes: Int
    let temperature: Double
    /// The grid width: sampling.max_new_tokens.
    let width: Int
    let seed: UInt64
    /// "GRPO", "RLOO": in errors and step contexts.
    let name: String

    /// A minibatch's loss from the policy's log-probs and entropies on the completion grid.
    typealias Loss = (_ rows: [SampleRecord], _ indices: [Int], _ batch: CompletionBatch, _ logps: [Float], _ entropies: [Float])
        throws -> PolicyLossResult

    func plan(samples: Int, round r: Int) -> TrainingPlan {
        var run = RunOptions()
        run.epochs = passes; run.batchSize = max(1, min(algorithm.batchSize, samples)); run.seed = CampaignConfig.roundSeed(seed, r)
        return TrainingPlan(examples: samples, run: run)
    }

    /// Runs the update; metrics are the loss's (TRL's names) averaged over steps, plus grad_norm,
    /// learning_rate, train/samples and train/steps. A LoRA `policy` trains its adapter only.
    func run(policy p: PolicyModel, optimizer: AdamW, samples: [SampleRecord], round r: Int, shouldStop: UpdateGate,
             loss: Loss) throws -> [(String, Double)] {
        guard !samples.isEmpty else { return [("train/samples", 0), ("train/steps", 0)] }
        let plan = plan(samples: samples.count, round: r)
        let policy = p.model
        let trainer = Trainer(model: policy, adapter: p.adapter, optimizer: optimizer, schedule: roundSchedule(algorithm), maxGradNorm: algorithm.optimizer.maxGradNorm)
        let ws = LlamaWorkspace(config: policy.config, maxBatch: plan.run.batchSize,
                                maxSeqLen: samples.map { $0.promptIDs.count + width }.max()!)
        ws.head = LMHeadOptions(temperature: temperature, entropies: true)
        let lora = p.activations(rows: ws.maxRows)
        var sums: [String: Double] = [:], keys: [String] = []
        var gradNorm = 0.0, lr = 0.0
        let completed = try plan.runSteps { s, micro in
            if shouldStop(s, plan.lastStep) { return .stop }
            let stats = try trainer.step(microBatches: micro.count, context: "round \(r), \(name) step \(s + 1)") { m in
                let idx = micro[m], rows = idx.map { samples[$0] }
                let batch = try CompletionBatch(prompts: rows.map(\.promptIDs), completions: rows.map(\.responseIDs), width: width,
                                                pad: policy.config.batchPadID)
                let out = try policy.forward(batch.tokens, workspace: ws, lora: lora)
                let entropies = batch.grid(UnsafeBufferPointer(start: ws.entropy, count: rows.count * batch.tokens.seqLen))
                let l = try loss(rows, idx, batch, batch.grid(out), entropies)
                if l.loss.isFinite {
                    batch.outputGradient(l.dLogps).withUnsafeBufferPointer {
                        trainer.backward(batch.tokens, outputGradient: $0, workspace: ws, lora: lora)
                    }
                }
                for (k, v) in [("loss", l.loss)] + l.metrics {
                    if sums[k] == nil { keys.append(k) }
                    sums[k, default: 0] += v
                }
                return Float(l.loss)
            }
            gradNorm += Double(stats.gradNorm)
            lr = stats.learningRate
            return .proceed
        }
        guard completed else { throw RoundInterrupted() }
        let steps = Double(max(1, plan.lastStep))
        return keys.map { ($0, sums[$0]! / steps) }
            + [("grad_norm", gradNorm / steps), ("learning_rate", lr), ("train/samples", Double(samples.count)),
               ("train/steps", Double(plan.lastStep))]
    }
}

/// Each sample's advantage on every one of its tokens (the buffer's `advantages`); returns whether
/// the records held exactly these before (replay's check).
@discardableResult
func storeAdvantages(_ records: inout [SampleRecord], _ advantages: [Double]) -> Bool {
    var same = true
    for i in records.indices {
        let a = Array(repeating: Float(advantages[i]), count: records[i].responseIDs.count)
        same = same && records[i].advantages == a
        records[i].advantages = a
    }
    return same
}

/// Checks that the records are groups of `size` samples per prompt, in prompt order.
func checkGroups(_ records: [SampleRecord], size: Int, algorithm: String) throws {
    for (i, s) in records.enumerated() where s.promptIndex != records[i / size * size].promptIndex {
        throw CampaignError("sample \(i): \(algorithm) needs \(size) samples (sampling.n) per prompt, in prompt order; the buffer does not hold a \(algorithm) round")
    }
}

/// GRPO and RLOO: each prompt's `sampling.n` samples are one group, and each sample's advantage is
/// stored on its tokens. Rows, replay and the shared config checks live here; an algorithm gives its
/// advantages and its update.
protocol GroupRound: RoundAlgorithm {
    /// "GRPO", "RLOO".
    static var name: String { get }
    var groupSize: Int { get }
    func advantages(_ records: [SampleRecord]) throws -> GroupAdvantages
}

extension GroupRound {
    func buildRows(_ records: inout [SampleRecord], round r: Int, previous: RoundState) throws -> RoundRows {
        let adv = try advantages(records)
        storeAdvantages(&records, adv.advantages)
        return RoundRows(metrics: adv.metrics, summary: "\(records.count) samples in groups of \(groupSize), \(Self.name) update")
    }

    func replayRows(_ records: inout [SampleRecord], pairs: [PairRecord], previous: RoundState,
                    campaign: AlgorithmSection) throws -> ReplayRows {
        let adv = try advantages(records)
        let match = storeAdvantages(&records, adv.advantages)
        return ReplayRows(metrics: adv.metrics,
                          report: "advantages recomputed from the buffer's scores \(match ? "match" : "DIFFER from") the stored ones\n",
                          matchesBuffer: match)
    }

    /// The checks every group round needs: groups of ≥ 2; temperature 1 (the stored old log-probs are
    /// the sampler's); the section leaves temperature and max_completion_length to `sampling`
    /// (`leavesSamplingKeys`); one epoch. The caller then runs the section's own `validate`.
    static func validateGroups(_ config: CampaignConfig, section: String, leavesSamplingKeys: Bool,
                               _ bad: (String, String) -> CampaignError) throws {
        if config.sampling.n < 2 { throw bad("sampling.n", "must be ≥ 2 (\(name) compares the samples of a prompt)") }
        if config.sampling.temperature != 1 {
            throw bad("sampling.temperature", "must be 1 for \(name): the stored old log-probs are the sampler's, at temperature 1")
        }
        if !leavesSamplingKeys {
            throw bad(section, "takes temperature and max_completion_length from sampling.temperature and sampling.max_new_tokens; remove them")
        }
        if config.algorithm.epochs != 1 {
            throw bad("algorithm.epochs", "must be 1 for \(name); passes over a round's samples are \(section).num_iterations")
        }
    }
}
