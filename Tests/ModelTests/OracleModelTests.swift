// The Llama forward and backward against HF transformers (oracle fixtures): logits, every
// debug activation, response log-probs, the SFT loss and all its gradients, reward-model scores
// and the Bradley–Terry gradients.

import Foundation
import Kernels
import Model
import Testing
import TestSupport
import Training

@Suite struct OracleModelTests {
    let policy: LlamaModel
    let reference: LlamaModel
    let reward: LlamaModel

    init() throws {
        func load(_ u: URL) throws -> LlamaModel {
            let m = try ModelDirectory.load(u)
            return LlamaModel(config: m.config, parameters: m.parameters)
        }
        policy = try load(Oracle.policyDir)
        reference = try load(Oracle.referenceDir)
        reward = try load(Oracle.rewardDir)
    }

    /// Full logits [T, V] of one unpadded sequence.
    func logits(_ model: LlamaModel, _ ids: [Int], probe: ActivationProbe? = nil) throws -> [Float] {
        let ws = LlamaWorkspace(config: model.config, maxBatch: 1, maxSeqLen: ids.count)
        let batch = TokenBatch(rows: [ids.map(Int32.init)], pad: 2)
        try model.forward(batch, workspace: ws, probe: probe)
        var out = [Float](repeating: 0, count: ids.count * model.config.vocabSize)
        out.withUnsafeMutableBufferPointer { model.headLogits(rows: 0..<ids.count, workspace: ws, into: $0.baseAddress!) }
        return out
    }

    @Test func forwardLogits() throws {
        for item in Oracle.cases["forward"]!["items"]!.array! {
            let ids = Oracle.ints(item["input_ids"])
            let expected = Oracle.floats(item["logits"])
            expectClose(try logits(policy, ids), expected, 1e-5, "logits T=\(ids.count)")
        }
    }

    @Test func debugActivations() throws {
        let item = Oracle.cases["forward"]!["items"]!.array![1]
        let ids = Oracle.ints(item["input_ids"])
        var seen: [String: [Float]] = [:]
        _ = try logits(policy, ids) { name, values in seen[name] = Array(values) }
        let names = ["embed", "final_norm"] + (0..<2).flatMap { l in
            ["input_layernorm", "attn_out", "post_attention_layernorm", "mlp_out", "out"].map { "layer\(l).\($0)" }
        }
        for name in names {
            let got = try #require(seen[name], "activation \(name) not reported")
            expectClose(got, Oracle.tensor("forward.1.debug.\(name)"), 1e-5, name)
        }
    }

    @Test func referenceModelLogits() throws {
        let ids = Oracle.ints(Oracle.cases["forward"]!["items"]!.array![1]["input_ids"])
        expectClose(try logits(reference, ids), Oracle.tensor("forward.reference.1.logits"), 1e-5, "reference logits")
    }

    /// All four logprob items in one right-padded batch (also checks that padding changes nothing).
    @Test func responseLogprobs() throws {
        let items = Oracle.cases["logprobs"]!["items"]!.array!
        var rows: [[Int32]] = [], from: [Int] = []
        for it in items {
            let p = Oracle.ints(it["prompt_ids"]), r = Oracle.ints(it["response_ids"])
            rows.append((p + r).map(Int32.init))
            from.append(p.count)
        }
        let batch = TokenBatch(rows: rows, pad: 2, scoreFrom: from)
        for (model, key) in [(policy, "policy"), (reference, "reference")] {
            let ws = LlamaWorkspace(config: model.config, maxBatch: batch.batch, maxSeqLen: batch.seqLen)
            let out = try model.forward(batch, workspace: ws)
            for (b, it) in items.enumerated() {
                let got = (from[b]..<batch.lengths[b]).map { out[b * batch.seqLen + $0] }
                expectClose(got, Oracle.floats(it["\(key)_logprobs"]), 1e-5, "\(key) logprobs item \(b)")
                expectClose([got.reduce(0, +)], Oracle.floats(it["\(key)_sum"]), 1e-5, "\(key) sum item \(b)")
            }
        }
    }

    @Test func sftLossAndGradients() throws {
        let sft = Oracle.cases["sft"]!
        let ids = Oracle.ints(sft["input_ids"]), mask = Oracle.ints(sft["attention_mask"]), labels = Oracle.ints(sft["labels"])
        let B = 3, T = ids.count / 3
        let lengths = (0..<B).map { b in (0..<T).filter { mask[b * T + $0] == 1 }.count }
        let from = (0..<B).map { b in (1..<T).first { labels[b * T + $0] != -100 }! }
        let batch = TokenBatch(batch: B, seqLen: T, tokens: ids.map(Int32.init), lengths: lengths, scoreFrom: from)
        let ws = LlamaWorkspace(config: policy.config, maxBatch: B, maxSeqLen: T)
        let out = try policy.forward(batch, workspace: ws)
        let loss = SFTLoss.compute(logprobs: out, batch: batch)
        expectClose([loss.loss], Oracle.floats(sft["loss"]), 1e-5, "sft loss")
        let grads = ParameterBuffer(layout: policy.layout)
        loss.outputGradient.withUnsafeBufferPointer {
            policy.backward(batch, outputGradient: $0, gradients: grads, workspace: ws)
        }
        for e in policy.layout.entries {
            expectClose(grads.view(e), Oracle.tensor("grad.sft.\(e.name)"), 1e-4, "grad \(e.name)")
        }
    }

    @Test func rewardScoresAndBradleyTerryGradients() throws {
        let rm = Oracle.cases["reward_model"]!
        let ids = Oracle.ints(rm["input_ids"]), mask = Oracle.ints(rm["attention_mask"])
        let B = 4, T = ids.count / 4
        let lengths = (0..<B).map { b in (0..<T).filter { mask[b * T + $0] == 1 }.count }
        let batch = TokenBatch(batch: B, seqLen: T, tokens: ids.map(Int32.init), lengths: lengths,
                               scoreFrom: Array(repeating: 1, count: B))
        let ws = LlamaWorkspace(config: reward.config, maxBatch: B, maxSeqLen: T)
        let out = try reward.forward(batch, workspace: ws)
        let pad = reward.config.padTokenID
        let idx = (0..<B).map { BradleyTerryLoss.scoreIndex(batch: batch, row: $0, pad: pad) }
        #expect(idx == Oracle.ints(rm["last_non_pad_index"]))
        expectClose(idx.enumerated().map { out[$0.offset * T + $0.element] }, Oracle.floats(rm["scores"]), 1e-5, "scores")
        let bt = BradleyTerryLoss.compute(scores: out, batch: batch, pad: pad)
        expectClose([bt.result.loss], Oracle.floats(rm["loss"]), 1e-5, "BT loss")
        #expect(bt.accuracy == Float(rm["accuracy"]!.double!))
        expectClose([bt.margin], Oracle.floats(rm["margin"]), 1e-5, "BT margin")
        let grads = ParameterBuffer(layout: reward.layout)
        bt.result.outputGradient.withUnsafeBufferPointer {
            reward.backward(batch, outputGradient: $0, gradients: grads, workspace: ws)
        }
        #expect(reward.layout.entries.count == 21)
        for e in reward.layout.entries {
            expectClose(grads.view(e), Oracle.tensor("grad.reward_bt.\(e.name)"), 1e-4, "grad \(e.name)")
        }
    }
}
