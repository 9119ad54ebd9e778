// Errors in HF model directories: truncated or corrupt weights, missing, extra and misshapen
// tensors, missing files, unsupported configs — each message names the file, the tensor or key,
// and what to do. (Helpers `variant`, `expectModelError`, `bitsEqual`: ModelIOTests.swift.)

import Foundation
import Kernels
import Model
import TestSupport
import Testing

@Suite struct ModelLoadErrorTests {
    @Test func truncatedWeightsAreReported() throws {
        let tmp = TemporaryDirectory()
        let dir = try tmp.subdirectory("truncated")
        try copyDirectory(Fixtures.policy, to: dir.appendingPathComponent("m"))
        let m = dir.appendingPathComponent("m")
        let weights = m.appendingPathComponent("model.safetensors")
        let bytes = try Data(contentsOf: weights)
        try bytes.prefix(bytes.count / 2).write(to: weights)
        expectModelError([weights.path, "tensor '", "truncated or corrupt", "re-download"]) { _ = try ModelDirectory.load(m) }
        // Cut inside the header, and below 8 bytes.
        try bytes.prefix(1000).write(to: weights)
        expectModelError([weights.path, "beyond the end of the file"]) { _ = try ModelDirectory.load(m) }
        try bytes.prefix(5).write(to: weights)
        expectModelError([weights.path, "shorter than"]) { _ = try ModelDirectory.load(m) }
    }

    @Test func corruptHeaderIsReported() throws {
        let tmp = TemporaryDirectory()
        let m = tmp.url.appendingPathComponent("m")
        try copyDirectory(Fixtures.policy, to: m)
        let weights = m.appendingPathComponent("model.safetensors")
        var bytes = try Data(contentsOf: weights)
        for i in 8..<72 { bytes[i] = UInt8(truncatingIfNeeded: i &* 37 &+ 0x91) }
        try bytes.write(to: weights)
        expectModelError([weights.path, "header", "not valid JSON"]) { _ = try ModelDirectory.load(m) }
    }

    @Test func missingTensorIsReported() throws {
        let tmp = TemporaryDirectory()
        let dir = try variant(of: Fixtures.policy, in: tmp, "missing", tensors: { $0["model.layers.1.mlp.up_proj.weight"] = nil })
        expectModelError([dir.standardizedFileURL.path, "tensor 'model.layers.1.mlp.up_proj.weight' is missing"]) {
            _ = try ModelDirectory.load(dir)
        }
    }

    @Test func extraTensorsAreReported() throws {
        let tmp = TemporaryDirectory()
        let bias = try variant(of: Fixtures.policy, in: tmp, "bias", tensors: {
            $0["model.layers.0.self_attn.q_proj.bias"] = Tensor(shape: [64], values: .init(repeating: 0, count: 64))
        })
        expectModelError(["unexpected tensor 'model.layers.0.self_attn.q_proj.bias'", "model.safetensors", "bias-free"]) {
            _ = try ModelDirectory.load(bias)
        }
        let extra = try variant(of: Fixtures.reward, in: tmp, "extra", tensors: {
            $0["value_head.weight"] = Tensor(shape: [1, 64], values: .init(repeating: 0, count: 64))
        })
        expectModelError(["unexpected tensor 'value_head.weight'", extra.standardizedFileURL.path], excluding: ["bias"]) {
            _ = try ModelDirectory.load(extra)
        }
    }

    @Test func wrongShapeIsReported() throws {
        let tmp = TemporaryDirectory()
        let dir = try variant(of: Fixtures.policy, in: tmp, "shape", tensors: { $0["lm_head.weight"]!.shape = [64, 320] })
        expectModelError(["model.safetensors: tensor 'lm_head.weight' has shape [64, 320], expected [320, 64] from config.json"]) {
            _ = try ModelDirectory.load(dir)
        }
    }

    @Test func directoryWithoutWeightsIsReported() throws {
        let tmp = TemporaryDirectory()
        let dir = try tmp.subdirectory("empty")
        try FileManager.default.copyItem(at: Fixtures.policy.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        expectModelError([dir.standardizedFileURL.path, "model.safetensors", "model.safetensors.index.json"]) { _ = try ModelDirectory.load(dir) }
        expectModelError(["config.json"]) { _ = try ModelDirectory.load(tmp.url) }
        expectModelError(["no such directory"]) { _ = try ModelDirectory.load(tmp.file("nope")) }
    }

    @Test func configErrorsAndRopeThetaForms() throws {
        let tmp = TemporaryDirectory()
        let gpt2 = try variant(of: Fixtures.policy, in: tmp, "gpt2", config: { $0["model_type"] = .string("gpt2") })
        expectModelError(["config.json", "unsupported model_type 'gpt2'"]) { _ = try ModelDirectory.load(gpt2) }

        let linear = try variant(of: Fixtures.policy, in: tmp, "linear", config: {
            $0["rope_scaling"] = .object(["type": .string("linear"), "factor": .number(2)])
        })
        expectModelError(["config.json", "RoPE type 'linear'", "not supported"]) { _ = try ModelDirectory.load(linear) }

        let topLevel = try variant(of: Fixtures.policy, in: tmp, "theta", config: {
            $0["rope_parameters"] = nil
            $0["rope_theta"] = .number(500_000)
        })
        let loaded = try ModelDirectory.load(topLevel)
        #expect(loaded.config.ropeTheta == 500_000)
        #expect(bitsEqual(loaded.parameters, try ModelDirectory.load(Fixtures.policy).parameters))
    }
}
