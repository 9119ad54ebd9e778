// The model side of GRPO / RLOO against TRL 1.16 (Tests/Fixtures/grpo): per-token log-probs and
// entropies of the rollout batch (T = 1) for the policy and the reference; for every case that
// stores parameter gradients, the log-probs at the case's temperature, then the loss on Rondo's own
// log-probs backpropagated through the model, compared with every parameter's gradient.

import Foundation
import Model
import Testing
import TestSupport
@testable import Training

@Suite(.serialized) struct GRPOModelTests {
    static let rollout = GRPOOracle.cases["rollout"]!
    static let gradCases = ["grpo_beta0_sym", "grpo_kl_cliphigh", "bnpo_kl_cliphigh", "dr_grpo_kl_cliphigh", "dapo_beta0_cliphigh",
                            "dapo_kl_cliphigh", "gspo_seq_kl_cliphigh", "dapo_kl_temperature", "rloo_kl_cliphigh"]
    let policy: LlamaModel
    let reference: LlamaModel
    let batch: CompletionBatch

    init() throws {
        policy = try TinyTask.load(Oracle.policyDir)
        reference = try TinyTask.load(Oracle.referenceDir)
        let prompts = Oracle.ints(Self.rollout["prompt_of_row"]).map { Self.rollout["prompts"]!.array![$0].array!.map { Int32($0.int!) } }
        let completions = Self.rollout["completions"]!.array!.map { $0.array!.map { Int32($0.int!) } }
        batch = try CompletionBatch(prompts: prompts, completions: completions, width: Self.rollout["max_completion_length"]!.int!, pad: 2)
    }

    /// Per-token log-probs and entropies [B·C] of `model` at temperature `t`; the workspace keeps the
    /// forward for a backward.
    func score(_ model: LlamaModel, temperature t: Double) throws -> (logps: [Float], entropies: [Float], ws: LlamaWorkspace) {
        let ws = LlamaWorkspace(config: model.config, maxBatch: batch.rows, maxSeqLen: batch.tokens.seqLen)
        ws.head = LMHeadOptions(temperature: t, entropies: true)
        let out = try model.forward(batch.tokens, workspace: ws)
        return (batch.grid(out), batch.grid(UnsafeBufferPointer(start: ws.entropy, count: batch.rows * batch.tokens.seqLen)), ws)
    }

    static func expectAbsolute(_ a: [Float], _ e: [Float], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let err = maxAbsoluteError(a, e)
        #expect(err <= 1e-5, "\(what): max abs error \(err) > 1e-5", sourceLocation: sourceLocation)
    }

    @Test func rolloutLogprobsAndEntropiesAtTemperatureOne() throws {
        #expect(batch.mask().map { $0 ? 1 : 0 } == Oracle.ints(Self.rollout["completion_mask"]))
        let p = try score(policy, temperature: 1), r = try score(reference, temperature: 1)
        Self.expectAbsolute(p.logps, GRPOOracle.floats(Self.rollout["per_token_logps_T1"]), "rollout per_token_logps_T1")
        Self.expectAbsolute(p.entropies, GRPOOracle.floats(Self.rollout["entropies_T1"]), "rollout entropies_T1")
        Self.expectAbsolute(r.logps, GRPOOracle.floats(Self.rollout["ref_per_token_logps_T1"]), "rollout ref_per_token_logps_T1")
    }

    @Test(arguments: gradCases) func parameterGradientsMatchTRL(_ name: String) throws {
        let c = GRPOCase(name, rloo: name.hasPrefix("rloo"))
        if let ref = c.input("ref_per_token_logps") {
            Self.expectAbsolute(try score(reference, temperature: c.temperature).logps, ref, "\(name) ref_per_token_logps")
        }
        let (logps, entropies, ws) = try score(policy, temperature: c.temperature)
        let mask = c.mask
        Self.expectAbsolute(zip(logps, mask).map { $1 ? $0 : 0 }, c.floats("per_token_logps"), "\(name) per_token_logps")
        Self.expectAbsolute(zip(entropies, mask).map { $1 ? $0 : 0 }, c.floats("entropies"), "\(name) entropies")
        #expect(c.microBatches == [0..<batch.rows], "the gradient cases use one micro-batch")

        let (parts, d) = try c.run(logps: logps, entropies: entropies)
        c.expectLossAndMetrics(parts)
        expectClose(d, c.floats("dloss_dlogps"), 1e-4, "\(name) dloss_dlogps (Rondo's log-probs)")
        let grads = ParameterBuffer(layout: policy.layout)
        batch.outputGradient(d).withUnsafeBufferPointer {
            policy.backward(batch.tokens, outputGradient: $0, gradients: grads, workspace: ws)
        }
        #expect(policy.layout.entries.count == 21)
        for e in policy.layout.entries {
            expectClose(grads.view(e), GRPOOracle.tensor("grad.\(name).\(e.name)"), 1e-4,
                        "\(name) grad \(e.name)")
        }
    }
}
