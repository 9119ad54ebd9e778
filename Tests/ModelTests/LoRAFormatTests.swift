// PEFT adapter directories: Rondo's writer round-trips and matches PEFT's names, shapes and config
// fields; options Rondo does not implement, and adapters that do not fit the base, are refused
// with the file, the key and what to do. Also the frozen base: a LoRA backward leaves no base gradient.

import Foundation
import Model
import Testing
import TestSupport

@Suite struct LoRAFormatTests {
    let config = try! ModelDirectory.load(Oracle.policyDir).config

    @Test func writtenAdapterReadsBackAndMatchesPEFTsLayout() throws {
        let peft = try LoRAAdapter.load(from: LoRAFixture.adapterDir("lora_r4"), model: config)
        try withTemporaryDirectory { dir in
            try peft.save(to: dir, baseModel: "../base")
            let back = try LoRAAdapter.load(from: dir, model: config)
            #expect(back.config == peft.config)
            #expect(Array(back.weights.all) == Array(peft.weights.all))
            // Same tensor names, shapes and bytes of data as PEFT's own file.
            let mine = try SafetensorsFile(url: dir.appendingPathComponent(LoRAAdapter.weightsFile))
            let theirs = try SafetensorsFile(url: LoRAFixture.adapterDir("lora_r4").appendingPathComponent(LoRAAdapter.weightsFile))
            #expect(mine.names == theirs.names)
            for n in theirs.names { #expect(mine.info(n)?.shape == theirs.info(n)?.shape && mine.info(n)?.dtype == .f32) }
            #expect(mine.metadata == ["format": "pt"])
            let json = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: dir.appendingPathComponent(LoRAAdapter.configFile)))
            #expect(json["peft_type"] == .string("LORA") && json["task_type"] == .string("CAUSAL_LM"))
            #expect(json["r"]?.int == 4 && json["lora_alpha"]?.double == 8 && json["use_rslora"] == .bool(false))
            #expect(json["lora_dropout"]?.double == 0 && json["bias"] == .string("none") && json["fan_in_fan_out"] == .bool(false))
            #expect(json["target_modules"] == .array(["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"].map(JSONValue.string)))
            #expect(json["base_model_name_or_path"] == .string("../base"))
        }
    }

    @Test func rsLoRAScalingAndTargetsFromConfig() throws {
        let c = try LoRAAdapter.loadConfig(from: LoRAFixture.adapterDir("rslora_r8"))
        #expect(c.r == 8 && c.alpha == 16 && c.useRSLoRA && c.targets == [.q, .v])
        #expect(c.scaling == Float(16 / Double(8).squareRoot()))
        #expect(try LoRAConfig(r: 4, alpha: 8, targets: [.v, .q]).scaling == 2)
    }

    /// A copy of the lora_r4 adapter with `edit` applied to its config JSON.
    func editedAdapter(_ dir: URL, _ edit: (inout [String: JSONValue]) -> Void) throws -> URL {
        let out = dir.appendingPathComponent("adapter")
        try copyDirectory(LoRAFixture.adapterDir("lora_r4"), to: out)
        let url = out.appendingPathComponent(LoRAAdapter.configFile)
        var obj = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)).object!
        edit(&obj)
        try FileManager.default.removeItem(at: url)
        try JSONEncoder().encode(JSONValue.object(obj)).write(to: url)
        return out
    }

    @Test func unsupportedOptionsAreRefused() throws {
        let cases: [(String, JSONValue, [String])] = [
            ("lora_dropout", .number(0.05), ["'lora_dropout' is 0.05", "set it to 0"]),
            ("use_dora", .bool(true), ["'use_dora' is set", "plain LoRA only"]),
            ("target_modules", .string(".*proj"), ["'target_modules' is the pattern"]),
            ("target_modules", .array([.string("lm_head")]), ["unknown target module 'lm_head'"]),
            ("peft_type", .string("IA3"), ["'peft_type' is IA3, expected LORA"]),
            ("rank_pattern", .object(["q_proj": .number(8)]), ["'rank_pattern' is set"]),
            ("modules_to_save", .array([.string("lm_head")]), ["'modules_to_save' is", "only a reward model's score head"]),
            ("task_type", .string("TOKEN_CLS"), ["'task_type' is TOKEN_CLS", "SEQ_CLS"]),
        ]
        for (key, value, fragments) in cases {
            try withTemporaryDirectory { dir in
                let a = try editedAdapter(dir) { $0[key] = value }
                expectError(ModelError.self, mentioning: [a.appendingPathComponent(LoRAAdapter.configFile).path] + fragments) {
                    _ = try LoRAAdapter.load(from: a, model: config)
                }
            }
        }
    }

    @Test func adapterThatDoesNotFitIsRefused() throws {
        try withTemporaryDirectory { dir in
            // Claims r = 8 while the tensors are rank 4.
            let a = try editedAdapter(dir) { $0["r"] = .number(8) }
            expectError(ModelError.self, mentioning: ["adapter_model.safetensors", "lora_A.weight' has shape [4, 64], expected [8, 64]"]) {
                _ = try LoRAAdapter.load(from: a, model: config)
            }
        }
        try withTemporaryDirectory { dir in
            // Only q/v declared: the file's other tensors are unexpected, not silently dropped.
            let a = try editedAdapter(dir) { $0["target_modules"] = .array([.string("q_proj"), .string("v_proj")]) }
            expectError(ModelError.self, mentioning: ["unexpected tensor 'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight'"]) {
                _ = try LoRAAdapter.load(from: a, model: config)
            }
        }
    }

    @Test func frozenBaseGetsNoGradientAndAdapterGradientIsUnchangedByIt() throws {
        let loaded = try ModelDirectory.load(Oracle.policyDir)
        let model = LlamaModel(config: loaded.config, parameters: loaded.parameters)
        let lora = try LoRAAdapter.load(from: LoRAFixture.adapterDir("rslora_r8"), model: config)
        let batch = TokenBatch(rows: [[0, 5, 9, 33, 7, 1], [0, 12, 1]], pad: 2)
        let ws = LlamaWorkspace(config: config, maxBatch: 2, maxSeqLen: 6)
        let acts = LoRAActivations(adapter: lora, maxRows: 12)
        let dout = [Float](repeating: -0.25, count: 12)
        let before = Array(model.parameters.all)
        var results: [[Float]] = []
        for full in [false, true] {
            try model.forward(batch, workspace: ws, lora: acts)
            let g = ParameterBuffer(layout: lora.layout), base = full ? ParameterBuffer(layout: model.layout) : nil
            dout.withUnsafeBufferPointer {
                model.backward(batch, outputGradient: $0, gradients: base, lora: acts, loraGradients: g, workspace: ws)
            }
            results.append(Array(g.all))
            if let base { #expect(base.all.contains { $0 != 0 }) }
        }
        #expect(results[0] == results[1], "the adapter's gradient must not depend on whether base gradients are computed")
        #expect(results[0].contains { $0 != 0 })
        #expect(Array(model.parameters.all) == before)
    }
}
