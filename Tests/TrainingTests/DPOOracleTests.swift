// The DPO loss family against TRL 1.16 `DPOTrainer._compute_loss` (oracle case `dpo`): the batch
// layout, per-token log-probs, each loss type's loss, per-pair losses and reward metrics, the
// gradient of every policy parameter for the sigmoid loss; and the Bradley–Terry evaluation
// (oracle case `reward_model`) through the reward job's code path.

import Foundation
import Kernels
import Model
import Testing
import TestSupport
@testable import Training

@Suite(.serialized) struct DPOOracleTests {
    static let dpo = Oracle.cases["dpo"]!
    let policy: LlamaModel
    let reference: LlamaModel
    let examples: [PreferenceExample]

    init() throws {
        policy = try TinyTask.load(Oracle.policyDir)
        reference = try TinyTask.load(Oracle.referenceDir)
        examples = Self.dpo["triples"]!.array!.enumerated().map { i, t in
            PreferenceExample(prompt: Oracle.ints(t["prompt_ids"]).map(Int32.init), chosen: Oracle.ints(t["chosen_ids"]).map(Int32.init),
                              rejected: Oracle.ints(t["rejected_ids"]).map(Int32.init), line: i + 1)
        }
    }

    func lossConfig(_ type: DPOLossType) -> DPOLossConfig {
        DPOLossConfig(lossType: type, beta: Self.dpo["beta"]!.double!,
                      labelSmoothing: type == .robust ? Self.dpo["label_smoothing"]!.double! : 0)
    }

    /// Reference sums per row and the policy's forward output on the batch.
    func run() throws -> (batch: TokenBatch, ws: LlamaWorkspace, ref: [Double], out: [Float]) {
        let b = DPOJob.batch(examples, pad: 2)
        let ws = LlamaWorkspace(config: policy.config, maxBatch: 8, maxSeqLen: b.seqLen)
        let ref = DPOLoss.sequenceLogps(output: try reference.forward(b, workspace: ws), batch: b).sums
        return (b, ws, ref, Array(try policy.forward(b, workspace: ws)))
    }

    func compute(_ out: [Float], _ b: TokenBatch, _ ref: [Double], _ c: DPOLossConfig, _ m: inout DPOMetrics) -> LossResult {
        out.withUnsafeBufferPointer { DPOLoss.compute(policyOutput: $0, batch: b, referenceLogps: ref, config: c, metrics: &m) }
    }

    @Test func batchLayoutAndPerTokenLogprobs() throws {
        let (b, _, ref, out) = try run()
        #expect(b.tokens.map(Int.init) == Oracle.ints(Self.dpo["input_ids"]), "rows [chosen…, rejected…], right-padded with 2")
        let mask = Oracle.ints(Self.dpo["completion_mask"]), T = b.seqLen
        var got = [Float](repeating: 0, count: 8 * (T - 1))
        for r in 0..<8 { for t in 0..<(T - 1) where mask[r * T + t + 1] == 1 { got[r * (T - 1) + t] = out[r * T + t + 1] } }
        expectClose(got, Oracle.tensor("dpo.policy_per_token_logps"), 1e-5, "policy per-token logps")
        let (sums, tokens) = out.withUnsafeBufferPointer { DPOLoss.sequenceLogps(output: $0, batch: b) }
        #expect(tokens == Oracle.ints(Self.dpo["num_completion_tokens"]))
        expectClose(sums[0..<4].map(Float.init), Oracle.floats(Self.dpo["policy_chosen_logps"]), 1e-5, "policy chosen logps")
        expectClose(sums[4...].map(Float.init), Oracle.floats(Self.dpo["policy_rejected_logps"]), 1e-5, "policy rejected logps")
        expectClose(ref[0..<4].map(Float.init), Oracle.floats(Self.dpo["reference_chosen_logps"]), 1e-5, "reference chosen logps")
        expectClose(ref[4...].map(Float.init), Oracle.floats(Self.dpo["reference_rejected_logps"]), 1e-5, "reference rejected logps")
    }

    @Test(arguments: DPOLossType.allCases)
    func lossAndMetricsMatchTRL(type: DPOLossType) throws {
        let (b, _, ref, out) = try run()
        let expected = Self.dpo["losses"]![type.rawValue]!
        let tol: Float = type == .ipo ? 1e-4 : 1e-5
        var metrics = DPOMetrics()
        let loss = compute(out, b, ref, lossConfig(type), &metrics)
        expectClose([loss.loss], Oracle.floats(expected["loss"]), tol, "\(type) loss")
        // Per-pair losses and per-pair rewards.
        let (sums, tokens) = out.withUnsafeBufferPointer { DPOLoss.sequenceLogps(output: $0, batch: b) }
        let pairs = (0..<4).map {
            DPOLoss.pair(DPOPairLogps(policyChosen: sums[$0], policyRejected: sums[$0 + 4], referenceChosen: ref[$0],
                                      referenceRejected: ref[$0 + 4], chosenTokens: tokens[$0], rejectedTokens: tokens[$0 + 4]),
                         lossConfig(type))
        }
        expectClose(pairs.map { Float($0.loss) }, Oracle.floats(expected["per_pair_loss"]), tol, "\(type) per-pair loss")
        expectClose(pairs.map(\.chosenReward), Oracle.floats(Self.dpo["chosen_rewards"]), 1e-5, "chosen rewards")
        expectClose(pairs.map(\.rejectedReward), Oracle.floats(Self.dpo["rejected_rewards"]), 1e-5, "rejected rewards")
        // TRL's logged metrics.
        let m = Dictionary(uniqueKeysWithValues: metrics.values)
        #expect(metrics.values.map(\.0) == ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                                            "logps/chosen", "logps/rejected"])
        expectClose([Float(m["loss"]!)], Oracle.floats(expected["loss"]), tol, "\(type) metrics loss")
        expectClose([Float(m["rewards/chosen"]!)], Oracle.floats(Self.dpo["rewards_chosen_mean"]), 1e-5, "rewards/chosen")
        expectClose([Float(m["rewards/rejected"]!)], Oracle.floats(Self.dpo["rewards_rejected_mean"]), 1e-5, "rewards/rejected")
        #expect(Float(m["rewards/accuracies"]!) == Float(Self.dpo["reward_accuracy"]!.double!))
        expectClose([Float(m["rewards/margins"]!)], Oracle.floats(Self.dpo["reward_margin"]), 1e-5, "rewards/margins")
        let meanOf = { (k: String) in Oracle.floats(Self.dpo[k]).reduce(0, +) / 4 }
        expectClose([Float(m["logps/chosen"]!)], [meanOf("policy_chosen_logps")], 1e-5, "logps/chosen")
        expectClose([Float(m["logps/rejected"]!)], [meanOf("policy_rejected_logps")], 1e-5, "logps/rejected")
    }

    @Test func sigmoidGradientOfEveryPolicyParameter() throws {
        let (b, ws, ref, out) = try run()
        var metrics = DPOMetrics()
        let loss = compute(out, b, ref, lossConfig(.sigmoid), &metrics)
        let grads = ParameterBuffer(layout: policy.layout)
        loss.outputGradient.withUnsafeBufferPointer { policy.backward(b, outputGradient: $0, gradients: grads, workspace: ws) }
        #expect(policy.layout.entries.count == 21)
        for e in policy.layout.entries {
            expectClose(grads.view(e), Oracle.tensor("grad.dpo_sigmoid.\(e.name)"), 1e-4, "grad \(e.name)")
        }
    }

    /// The job's evaluation path (reference precomputed per example, micro-batches of 3 pairs) gives
    /// the same loss, metrics, and the norm of the oracle gradient.
    @Test func jobEvaluationMatchesTRL() throws {
        let ws = LlamaWorkspace(config: policy.config, maxBatch: 6, maxSeqLen: 13)
        let ref = try DPOJob.referenceLogps(examples, reference: Oracle.referenceDir, policy: policy, isPolicy: false,
                                            batchSize: 3, workspace: ws, pad: 2)
        let m = try DPOJob.evaluate(model: policy, examples: examples, referenceLogps: ref, config: lossConfig(.sigmoid), batchSize: 3)
        expectClose([Float(TinyTask.metric(m, "loss"))], Oracle.floats(Self.dpo["losses"]!["sigmoid"]!["loss"]), 1e-5, "eval loss")
        expectClose([Float(TinyTask.metric(m, "rewards/margins"))], Oracle.floats(Self.dpo["reward_margin"]), 1e-5, "eval margin")
        let gradNorm = policy.layout.entries.reduce(0.0) { acc, e in
            acc + Oracle.tensor("grad.dpo_sigmoid.\(e.name)").reduce(0.0) { $0 + Double($1) * Double($1) }
        }.squareRoot()
        expectClose([Float(TinyTask.metric(m, "grad_norm"))], [Float(gradNorm)], 1e-4, "eval grad_norm")
    }

    @Test func bradleyTerryEvaluationMatchesTRL() throws {
        let rm = Oracle.cases["reward_model"]!
        let seqs = rm["sequences"]!.array!.map { Oracle.ints($0).map(Int32.init) }
        let pairs = rm["pairs"]!.array!.enumerated().map { i, p in
            PairExample(chosen: seqs[Oracle.ints(p)[0]], rejected: seqs[Oracle.ints(p)[1]], line: i + 1)
        }
        let model = try TinyTask.load(Oracle.rewardDir)
        let m = try RewardJob.evaluate(model: model, examples: pairs, batchSize: 8)
        expectClose([Float(TinyTask.metric(m, "loss"))], Oracle.floats(rm["loss"]), 1e-5, "BT loss")
        #expect(Float(TinyTask.metric(m, "accuracy")) == Float(rm["accuracy"]!.double!))
        expectClose([Float(TinyTask.metric(m, "margin"))], Oracle.floats(rm["margin"]), 1e-5, "BT margin")
    }

    /// TRL's rpo_alpha: loss + alpha × the mean NLL of the chosen completions' tokens, with its
    /// gradient −alpha / count at each of those tokens and nothing elsewhere.
    @Test func rpoAlphaAddsTheChosenNLL() throws {
        let (b, _, ref, out) = try run()
        var m0 = DPOMetrics(), m1 = DPOMetrics()
        var withRPO = lossConfig(.sigmoid)
        withRPO.rpoAlpha = 0.5
        let plain = compute(out, b, ref, lossConfig(.sigmoid), &m0), rpo = compute(out, b, ref, withRPO, &m1)
        let (sums, tokens) = out.withUnsafeBufferPointer { DPOLoss.sequenceLogps(output: $0, batch: b) }
        let count = tokens[0..<4].reduce(0, +)
        let nll = -sums[0..<4].reduce(0, +) / Double(count)
        let reported = m1.values.first { $0.0 == "nll_loss" }?.1
        #expect(reported.map { abs($0 - nll) <= 1e-12 * abs(nll) } == true, "nll_loss \(String(describing: reported)) vs \(nll)")
        #expect(!m0.values.contains { $0.0 == "nll_loss" })
        #expect(rpo.loss == plain.loss + Float(0.5 * nll))
        let T = b.seqLen, g = Float(-0.5 / Double(count))
        for r in 0..<8 {
            for t in 0..<T {
                let chosenToken = r < 4 && t >= b.scoreFrom[r] && t < b.lengths[r]
                let i = r * T + t
                #expect(rpo.outputGradient[i] == plain.outputGradient[i] + (chosenToken ? g : 0), "row \(r), position \(t)")
            }
        }
        // A training_args.json written before rpo_alpha existed still decodes (alpha 0).
        let old = try JSONDecoder().decode(DPOLossConfig.self, from: Data(#"{"lossType": "ipo", "beta": 0.2, "labelSmoothing": 0, "lengthNormalized": false}"#.utf8))
        #expect(old == DPOLossConfig(lossType: .ipo, beta: 0.2))
        #expect(throws: JobError.self) { try DPOLossConfig(rpoAlpha: -1).validate() }
    }

    /// The not-TRL length-normalised option equals sigmoid on per-token mean log-probs.
    @Test func lengthNormalisedOption() {
        let p = DPOPairLogps(policyChosen: -6, policyRejected: -9, referenceChosen: -7, referenceRejected: -8, chosenTokens: 3, rejectedTokens: 2)
        let r = DPOLoss.pair(p, DPOLossConfig(lossType: .sigmoid, beta: 0.5, lengthNormalized: true))
        let d = (-6.0 + 7) / 3 - (-9.0 + 8) / 2
        #expect(abs(r.loss - log1p(exp(-0.5 * d))) < 1e-12)
        #expect(abs(r.dPolicyChosen - (-0.5 / (1 + exp(0.5 * d)) / 3)) < 1e-12)
        #expect(r.chosenReward == Float(0.5 * 1.0), "rewards stay summed")
        #expect(throws: JobError.self) { try DPOLossConfig(lossType: .ipo, lengthNormalized: true).validate() }
        #expect(throws: JobError.self) { try DPOLossConfig(lossType: .sigmoid, labelSmoothing: 0.1).validate() }
    }
}
