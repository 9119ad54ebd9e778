// LoRA against PEFT/TRL (Tests/Fixtures/lora, README there): logits and log-probs with the adapter
// on and off, the SFT loss and DPO loss (reference = the same base with the adapter off), every
// lora_A/lora_B gradient with the base frozen, and PEFT's merge — for both adapters of the set.

import Foundation
import Kernels
import Model
import Testing
import TestSupport
import Training

@Suite struct LoRAOracleTests {
    let base: LlamaModel

    init() throws {
        let m = try ModelDirectory.load(Oracle.policyDir)
        base = LlamaModel(config: m.config, parameters: m.parameters)
    }

    func adapter(_ name: String) throws -> LoRAAdapter {
        try LoRAAdapter.load(from: LoRAFixture.adapterDir(name), model: base.config)
    }

    /// The SFT batch: right-padded rows, scored from the first label.
    func sftBatch() -> TokenBatch {
        let sft = LoRAFixture.cases["inputs"]!["sft_batch"]!
        let ids = Oracle.ints(sft["input_ids"]), mask = Oracle.ints(sft["attention_mask"]), labels = Oracle.ints(sft["labels"])
        let B = 3, T = ids.count / B
        let lengths = (0..<B).map { b in (0..<T).filter { mask[b * T + $0] == 1 }.count }
        let from = (0..<B).map { b in (1..<T).first { labels[b * T + $0] != -100 }! }
        return TokenBatch(batch: B, seqLen: T, tokens: ids.map(Int32.init), lengths: lengths, scoreFrom: from)
    }

    /// The DPO batch (chosen rows 0–3, rejected 4–7), scored over the completion.
    func dpoBatch() -> TokenBatch {
        let dpo = LoRAFixture.cases["inputs"]!["dpo_batch"]!
        let ids = Oracle.ints(dpo["input_ids"]), mask = Oracle.ints(dpo["attention_mask"]), comp = Oracle.ints(dpo["completion_mask"])
        let B = 8, T = ids.count / B
        let lengths = (0..<B).map { b in (0..<T).filter { mask[b * T + $0] == 1 }.count }
        let from = (0..<B).map { b in (0..<T).first { comp[b * T + $0] == 1 }! }
        return TokenBatch(batch: B, seqLen: T, tokens: ids.map(Int32.init), lengths: lengths, scoreFrom: from)
    }

    /// Logits [B, T, V] of a batch, 0 at pad positions (the fixture's convention).
    func logits(_ model: LlamaModel, _ batch: TokenBatch, lora: LoRAAdapter?) throws -> [Float] {
        let ws = LlamaWorkspace(config: model.config, maxBatch: batch.batch, maxSeqLen: batch.seqLen)
        let acts = lora.map { LoRAActivations(adapter: $0, maxRows: batch.batch * batch.seqLen) }
        try model.forward(batch, workspace: ws, lora: acts)
        let V = model.config.vocabSize, T = batch.seqLen
        var out = [Float](repeating: 0, count: batch.batch * T * V)
        out.withUnsafeMutableBufferPointer { model.headLogits(rows: 0..<(batch.batch * T), workspace: ws, into: $0.baseAddress!) }
        for b in 0..<batch.batch { for t in batch.lengths[b]..<T { for v in 0..<V { out[(b * T + t) * V + v] = 0 } } }
        return out
    }

    /// Absolute tolerance check (the README's 1e-5 for logits and per-token log-probs); NaN fails.
    func expectAbsolute(_ a: [Float], _ e: [Float], _ tol: Float, _ what: String) {
        #expect(a.count == e.count, "\(what): \(a.count) values, expected \(e.count)")
        let err = zip(a, e).reduce(Float(0)) { m, p in let d = abs(p.0 - p.1); return d.isNaN || m.isNaN ? .nan : max(m, d) }
        #expect(err <= tol, "\(what): max abs error \(err) > \(tol)")
        if ProcessInfo.processInfo.environment["RONDO_REPORT_ERRORS"] == "1" { print("oracle-error \(what): \(err) abs (tolerance \(tol))") }
    }

    @Test(arguments: LoRAFixture.names) func logitsAndLogprobs(name: String) throws {
        let c = LoRAFixture.adapter(name), lora = try adapter(name), batch = sftBatch()
        // Logits: 1e-5 relative to max|logit| (the README's fallback: the float32 reference itself is
        // 8.4e-6 from float64, and the base logits here differ from it by up to 1.2e-5 absolute).
        expectClose(try logits(base, batch, lora: nil), LoRAFixture.floats(c["logits_base"]), 1e-5, "\(name) base logits")
        expectClose(try logits(base, batch, lora: lora), LoRAFixture.floats(c["logits_adapter"]), 1e-5, "\(name) adapter logits")
        for (key, on) in [("logprobs_base", false), ("logprobs_adapter", true)] {
            let full = TokenBatch(batch: batch.batch, seqLen: batch.seqLen, tokens: batch.tokens, lengths: batch.lengths,
                                  scoreFrom: Array(repeating: 1, count: batch.batch))
            let ws = LlamaWorkspace(config: base.config, maxBatch: 3, maxSeqLen: full.seqLen)
            let acts = on ? LoRAActivations(adapter: lora, maxRows: 3 * full.seqLen) : nil
            let out = try base.forward(full, workspace: ws, lora: acts)
            let T = full.seqLen
            let got = (0..<3).flatMap { b in (0..<(T - 1)).map { t in out[b * T + t + 1] } }
            expectAbsolute(got, LoRAFixture.floats(c[key]), 1e-5, "\(name) \(key)")
        }
    }

    @Test(arguments: LoRAFixture.names) func sftLossAndGradients(name: String) throws {
        let c = LoRAFixture.adapter(name), lora = try adapter(name), batch = sftBatch()
        let ws = LlamaWorkspace(config: base.config, maxBatch: batch.batch, maxSeqLen: batch.seqLen)
        let off = SFTLoss.compute(logprobs: try base.forward(batch, workspace: ws), batch: batch)
        expectClose([off.loss], LoRAFixture.floats(c["sft"]!["loss_base_without_adapter"]), 1e-5, "\(name) sft loss, adapter off")
        let acts = LoRAActivations(adapter: lora, maxRows: batch.batch * batch.seqLen)
        let loss = SFTLoss.compute(logprobs: try base.forward(batch, workspace: ws, lora: acts), batch: batch)
        expectClose([loss.loss], LoRAFixture.floats(c["sft"]!["loss"]), 1e-5, "\(name) sft loss")
        let grads = ParameterBuffer(layout: lora.layout)
        loss.outputGradient.withUnsafeBufferPointer {
            base.backward(batch, outputGradient: $0, gradients: nil, lora: acts, loraGradients: grads, workspace: ws)
        }
        let expected = c["sft"]!["grads"]!.object!
        #expect(Set(expected.keys) == Set(lora.layout.entries.map(\.name)))
        for e in lora.layout.entries {
            expectClose(grads.view(e), LoRAFixture.floats(expected[e.name]), 1e-4, "\(name) sft grad \(e.name)")
        }
    }

    @Test(arguments: LoRAFixture.names) func dpoLossAndGradients(name: String) throws {
        let c = LoRAFixture.adapter(name)["dpo_sigmoid"]!, lora = try adapter(name), batch = dpoBatch()
        let ws = LlamaWorkspace(config: base.config, maxBatch: batch.batch, maxSeqLen: batch.seqLen)
        let reference = DPOLoss.sequenceLogps(output: try base.forward(batch, workspace: ws), batch: batch).sums
        expectAbsolute(reference.map(Float.init), LoRAFixture.floats(c["reference_logps"]), 5e-5, "\(name) reference logps")
        let acts = LoRAActivations(adapter: lora, maxRows: batch.batch * batch.seqLen)
        let out = try base.forward(batch, workspace: ws, lora: acts)
        let policy = DPOLoss.sequenceLogps(output: out, batch: batch).sums
        expectAbsolute(policy.map(Float.init), LoRAFixture.floats(c["policy_logps"]), 5e-5, "\(name) policy logps")
        let ratios: [Double] = (0..<8).map { (k: Int) -> Double in policy[k] - reference[k] }
        let delta: [Float] = (0..<4).map { (k: Int) -> Float in Float(ratios[k] - ratios[k + 4]) }
        expectAbsolute(delta, LoRAFixture.floats(c["delta"]), 5e-5, "\(name) delta")
        var metrics = DPOMetrics()
        let config = DPOLossConfig(lossType: .sigmoid, beta: c["beta"]!.double!)
        let loss = DPOLoss.compute(policyOutput: out, batch: batch, referenceLogps: reference, config: config, metrics: &metrics)
        expectClose([loss.loss], LoRAFixture.floats(c["loss"]), 1e-5, "\(name) dpo loss")
        let grads = ParameterBuffer(layout: lora.layout)
        loss.outputGradient.withUnsafeBufferPointer {
            base.backward(batch, outputGradient: $0, gradients: nil, lora: acts, loraGradients: grads, workspace: ws)
        }
        let expected = c["grads"]!.object!
        #expect(expected.count == lora.layout.entries.count)
        for e in lora.layout.entries {
            expectClose(grads.view(e), LoRAFixture.floats(expected[e.name]), 1e-4, "\(name) dpo grad \(e.name)")
        }
    }

    @Test(arguments: LoRAFixture.names) func mergeMatchesPEFT(name: String) throws {
        let lora = try adapter(name), merged = base.parameters.clone()
        lora.merge(into: merged)
        let peft = try ModelDirectory.load(LoRAFixture.mergedDir(name))
        for e in merged.layout.entries {
            expectAbsolute(Array(merged.view(e)), Array(peft.parameters.view(e)), 1e-6, "\(name) merged \(e.name)")
        }
        let model = LlamaModel(config: base.config, parameters: merged)
        expectClose(try logits(model, sftBatch(), lora: nil), LoRAFixture.floats(LoRAFixture.adapter(name)["logits_merged"]),
                    1e-5, "\(name) merged logits")
    }
}
