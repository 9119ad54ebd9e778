// Reward-model LoRA adapters (`rondo rm train --lora-r`, PEFT's SEQ_CLS task): written in PEFT's
// form (task_type SEQ_CLS, modules_to_save ["classifier", "score"], the score head as
// `base_model.model.score.weight`), reloaded by the labeller with the same scores bit for bit, on a
// reward-model base or a causal-LM one (whose head the adapter's score replaces); `rondo merge`
// gives a plain reward model scoring the same within rounding; adapters of the wrong kind are
// refused with the reason.

import Foundation
import Kernels
import Labeling
import Model
import Testing
import TestSupport

@Suite struct RewardAdapterTests {
    /// An r = 4 adapter on every projection whose B and score head are random (so all of it matters).
    static func adapter(_ config: LlamaConfig, seed: UInt64) throws -> LoRAAdapter {
        let a = LoRAAdapter(config: try LoRAConfig(r: 4, alpha: 8, targets: LoRATarget.allCases), model: config)
        a.initialize(seed: seed)
        let rng = Philox(seed: seed + 1)
        for e in a.layout.entries where !e.name.hasSuffix(".lora_A.weight") {
            let v = a.weights.view(e)
            for j in 0..<v.count { v[j] = 0.2 * rng.normal(UInt64(e.offset + j)) }
        }
        return a
    }

    static let request = LabelRequest(prompt: "", promptIDs: [5, 17, 40], answer: nil, responses: ["", "", "", ""],
                                      responseIDs: [[44, 51], [60, 7, 8], [9], [100, 11, 120, 13]])

    @Test func savedAdapterScoresBitForBitAfterReload() throws {
        try withTemporaryDirectory { dir in
            let base = try ModelDirectory.load(Fixtures.reward)
            let a = try Self.adapter(base.config, seed: 3)
            let saved = dir.appendingPathComponent("adapter")
            try a.save(to: saved, baseModel: Fixtures.reward.path)
            let config = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: saved.appendingPathComponent("adapter_config.json")))
            #expect(config["task_type"]?.string == "SEQ_CLS" && config["modules_to_save"]?.array?.compactMap(\.string) == ["classifier", "score"])
            let file = try SafetensorsFile(url: saved.appendingPathComponent("adapter_model.safetensors"))
            #expect(file.info("base_model.model.score.weight")?.shape == [1, 64] && file.names.count == 2 * 7 * 2 + 1)

            let inMemory = RewardModelLabeller(model: LlamaModel(config: base.config, parameters: base.parameters), adapter: a,
                                               weightsSHA256: "m", batchSize: 3)
            let reloaded = try RewardModelLabeller(directory: Fixtures.reward, adapter: saved, weightsSHA256: "r", batchSize: 3)
            let plain = try RewardModelLabeller(directory: Fixtures.reward, weightsSHA256: "p", batchSize: 3)
            let s0 = try inMemory.score(Self.request), s1 = try reloaded.score(Self.request), s2 = try plain.score(Self.request)
            #expect(s0.count == 4 && s0.map(\.bitPattern) == s1.map(\.bitPattern), "\(s0) vs \(s1)")
            #expect(zip(s0, s2).allSatisfy { abs($0 - $1) > 1e-3 }, "the adapter changes every score: \(s0) vs \(s2)")

            // On the causal LM of the same shape: its head is dropped, the adapter's score head used.
            let onLM = try RewardModelLabeller(directory: Fixtures.policy, adapter: saved, weightsSHA256: "l", batchSize: 3)
            let lmBase = try ModelDirectory.load(Fixtures.policy).asRewardModel(seed: 0)
            let lmInMemory = RewardModelLabeller(model: LlamaModel(config: lmBase.0, parameters: lmBase.1), adapter: a,
                                                 weightsSHA256: "m", batchSize: 3)
            #expect(try onLM.score(Self.request).map(\.bitPattern) == lmInMemory.score(Self.request).map(\.bitPattern))

            // `rondo merge`: a plain reward model with W + s·B·A and the adapter's score head.
            let merged = dir.appendingPathComponent("merged")
            _ = try LoRAMerge.run(base: Fixtures.reward, adapter: saved, out: merged)
            let s3 = try RewardModelLabeller(directory: merged, weightsSHA256: "x", batchSize: 3).score(Self.request)
            for (m, u) in zip(s3, s0) { #expect(abs(m - u) <= 1e-4 * max(1, abs(u)), "merged \(m) vs adapter \(u)") }
        }
    }

    @Test func adaptersOfTheWrongKindAreRefused() throws {
        try withTemporaryDirectory { dir in
            let rm = try ModelDirectory.load(Fixtures.reward).config, lm = try ModelDirectory.load(Fixtures.policy).config
            let seqCls = dir.appendingPathComponent("seqcls"), causal = dir.appendingPathComponent("causal")
            try Self.adapter(rm, seed: 1).save(to: seqCls, baseModel: "rm")
            try Self.adapter(lm, seed: 1).save(to: causal, baseModel: "lm")
            #expect { _ = try LoRAAdapter.load(from: seqCls, model: lm) } throws: { "\($0)".contains("SEQ_CLS") && "\($0)".contains("causal LM") }
            #expect { _ = try LoRAAdapter.load(from: causal, model: rm) } throws: { "\($0)".contains("CAUSAL_LM") && "\($0)".contains("reward model") }
            #expect { _ = try RewardModelLabeller(directory: Fixtures.reward, adapter: causal, weightsSHA256: "c") } throws: {
                "\($0)".contains("CAUSAL_LM")
            }
            // modules_to_save other than the score head is refused by key.
            let url = seqCls.appendingPathComponent("adapter_config.json")
            let text = try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "\"classifier\"", with: "\"lm_head\"")
            try text.write(to: url, atomically: true, encoding: .utf8)
            #expect { _ = try LoRAAdapter.load(from: seqCls, model: rm) } throws: { "\($0)".contains("modules_to_save") }
        }
    }
}
