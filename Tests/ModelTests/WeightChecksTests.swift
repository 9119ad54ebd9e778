// Weight files that load but must not: bytes after the last tensor's data, gaps between tensors,
// and non-finite weights (reported at load with the tensor's name, not later as "logits not finite").

import Foundation
import Model
import Testing
import TestSupport

@Suite struct WeightChecksTests {
    @Test func trailingBytesAfterTheDataAreAnError() throws {
        let tmp = TemporaryDirectory()
        let url = tmp.file("w.safetensors")
        try writeSafetensors(["a": Tensor(shape: [2], values: [1, 2]), "b": Tensor(shape: [1], values: [3])], to: url)
        #expect(try SafetensorsFile(url: url).tensor("b").values == [3])
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0, 0, 0, 0, 7]))
        try handle.close()
        expectError(ModelError.self, mentioning: [url.path, "5 trailing bytes"]) { _ = try SafetensorsFile(url: url) }
    }

    @Test func gapBetweenTensorsIsAnError() throws {
        let tmp = TemporaryDirectory()
        let url = tmp.file("gap.safetensors")
        let header = Data(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#.utf8)
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Data($0) }
        bytes += header + Data(count: 12)
        try bytes.write(to: url)
        expectError(ModelError.self, mentioning: [url.path, "[4, 8)", "'b'"]) { _ = try SafetensorsFile(url: url) }
    }

    @Test func nonFiniteWeightsNameTheTensorAtLoad() throws {
        let tmp = TemporaryDirectory()
        let m = tmp.url.appendingPathComponent("m")
        try copyDirectory(Fixtures.policy, to: m)
        let weights = m.appendingPathComponent("model.safetensors")
        var tensors = try SafetensorsFile(url: weights).readAll()
        let name = "model.layers.1.self_attn.v_proj.weight"
        tensors[name]!.values[5] = .nan
        try writeSafetensors(tensors, to: weights)
        expectError(ModelError.self, mentioning: [weights.path, "tensor '\(name)'", "nan", "element 5"]) { _ = try ModelDirectory.load(m) }
        tensors[name]!.values[5] = 0
        tensors["model.norm.weight"]!.values[0] = -.infinity
        try writeSafetensors(tensors, to: weights)
        expectError(ModelError.self, mentioning: ["tensor 'model.norm.weight'", "-inf"]) { _ = try ModelDirectory.load(m) }
    }
}
