// GGUF export: the oracle policy exported as f32, f16 and q8_0 is byte-identical to the fixture
// files that gguf-py wrote following llama.cpp's converter (metadata, tensor order, permutation,
// quantisation, alignment); export → import round trips; the chat template is carried.

import Foundation
@testable import Model
import TestSupport
import Testing

/// The repository root (for `policies/`).
private enum CLIRepo {
    static let root = Fixtures.oracle.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

@Suite struct GGUFExportTests {
    @Test(arguments: GGUFExportType.allCases)
    func exportOfThePolicyEqualsTheFixture(type: GGUFExportType) throws {
        try withTemporaryDirectory { tmp in
            let out = tmp.appendingPathComponent("p.gguf")
            try GGUFExport.run(dir: Fixtures.policy, out: out, type: type, name: "Rondo Tiny Policy")
            let fixture = Fixtures.gguf.appendingPathComponent("tiny-\(type.rawValue).gguf")
            let got = try GGUFFile(url: out), want = try GGUFFile(url: fixture)
            #expect(got.keys == want.keys)
            for k in want.keys { #expect(got.metadata[k] == want.metadata[k], "metadata '\(k)'") }
            #expect(got.tensors.map(\.name) == want.tensors.map(\.name))
            for w in want.tensors {
                let g = try #require(got.tensor(w.name))
                #expect(g.type == w.type && g.ne == w.ne && g.bytes == w.bytes, "\(w.name): \(g.type.name) \(g.ne) \(g.bytes) vs \(w.type.name) \(w.ne) \(w.bytes)")
                let same = got.withBytes(g) { a in want.withBytes(w) { b in memcmp(a, b, w.bytes.count) == 0 } }
                #expect(same, "\(w.name): bytes differ from \(fixture.lastPathComponent)")
            }
            #expect(try Data(contentsOf: out) == Data(contentsOf: fixture), "the whole file is byte-identical")
        }
    }

    @Test func f32RoundTripIsExact() throws {
        try withTemporaryDirectory { tmp in
            let file = tmp.appendingPathComponent("p.gguf"), back = tmp.appendingPathComponent("back")
            try GGUFExport.run(dir: Fixtures.policy, out: file, type: .f32)
            try GGUFImport.run(file: file, out: back)
            let original = try ModelDirectory.load(Fixtures.policy), imported = try ModelDirectory.load(back)
            #expect(imported.config.vocabSize == original.config.vocabSize)
            #expect(imported.config.rmsNormEps == original.config.rmsNormEps)
            #expect(imported.config.ropeTheta == original.config.ropeTheta)
            let a = tensors(of: original.parameters), b = tensors(of: imported.parameters)
            #expect(a.keys.sorted() == b.keys.sorted())
            for (name, t) in a {
                #expect(b[name]?.values.map(\.bitPattern) == t.values.map(\.bitPattern), "\(name)")
            }
            // And the tokenizer: vocabulary, merges and special tokens survive.
            let orig = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: Fixtures.policy.appendingPathComponent("tokenizer.json")))
            let got = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: back.appendingPathComponent("tokenizer.json")))
            #expect(got["model"]?["vocab"] == orig["model"]?["vocab"])
            #expect(got["model"]?["merges"] == orig["model"]?["merges"])
            #expect(got["added_tokens"] == orig["added_tokens"])
            #expect(got["pre_tokenizer"] == orig["pre_tokenizer"])
        }
    }

    @Test func tiedByteLevelStarterRoundTrips() throws {
        // policies/starter: tied embeddings (no output.weight), a byte-only vocabulary (no merges),
        // no tokenizer_config.json (special ids come from config.json).
        let starter = CLIRepo.root.appendingPathComponent("policies/starter")
        try withTemporaryDirectory { tmp in
            let file = tmp.appendingPathComponent("s.gguf"), back = tmp.appendingPathComponent("back")
            try GGUFExport.run(dir: starter, out: file, type: .f32)
            let g = try GGUFFile(url: file)
            #expect(g.tensor("output.weight") == nil)
            #expect(g.metadata["tokenizer.ggml.merges"] == .array(.string, []))
            #expect(g.metadata["tokenizer.ggml.eos_token_id"] == .uint32(1))
            try GGUFImport.run(file: file, out: back)
            let original = try ModelDirectory.load(starter), imported = try ModelDirectory.load(back)
            #expect(imported.config.tieWordEmbeddings)
            #expect(Array(imported.parameters.all).map(\.bitPattern) == Array(original.parameters.all).map(\.bitPattern))
            let a = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: starter.appendingPathComponent("tokenizer.json")))
            let b = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: back.appendingPathComponent("tokenizer.json")))
            #expect(b["model"]?["vocab"] == a["model"]?["vocab"])
        }
    }

    @Test func quantisedImportReExportsToTheSameValues() throws {
        // tiny-q4_1 → HF (dequantised) → f32 GGUF → HF: the same bits as the first import.
        try withTemporaryDirectory { tmp in
            let first = tmp.appendingPathComponent("a"), file = tmp.appendingPathComponent("a.gguf"), second = tmp.appendingPathComponent("b")
            try GGUFImport.run(file: Fixtures.gguf.appendingPathComponent("tiny-q4_1.gguf"), out: first)
            try GGUFExport.run(dir: first, out: file, type: .f32)
            try GGUFImport.run(file: file, out: second)
            let want = try SafetensorsFile(url: Fixtures.gguf.appendingPathComponent("expected-q4_1.safetensors")).readAll()
            let got = try SafetensorsFile(url: second.appendingPathComponent("model.safetensors")).readAll()
            for (name, t) in want { #expect(got[name]?.values.map(\.bitPattern) == t.values.map(\.bitPattern), "\(name)") }
            #expect(try GGUFFile(url: file).metadata["general.name"]?.string == "Rondo Tiny Policy")
        }
    }

    @Test func chatTemplateIsExportedAndImported() throws {
        try withTemporaryDirectory { tmp in
            let dir = tmp.appendingPathComponent("policy")
            try copyDirectory(Fixtures.policy, to: dir)
            let template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
            try Data(template.utf8).write(to: dir.appendingPathComponent("chat_template.jinja"))
            let file = tmp.appendingPathComponent("p.gguf")
            let s = try GGUFExport.run(dir: dir, out: file, type: .q8_0)
            #expect(s.hasChatTemplate)
            let g = try GGUFFile(url: file)
            #expect(g.metadata["tokenizer.chat_template"]?.string == template)
            #expect(g.keys.last == "general.quantization_version")
            let back = tmp.appendingPathComponent("back")
            try GGUFImport.run(file: file, out: back)
            let cfg = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: back.appendingPathComponent("tokenizer_config.json")))
            #expect(cfg["chat_template"]?.string == template)
        }
    }

    @Test func rewardModelIsRefused() throws {
        try withTemporaryDirectory { tmp in
            #expect(throws: ModelError.self) {
                try GGUFExport.run(dir: Fixtures.reward, out: tmp.appendingPathComponent("r.gguf"), type: .f32)
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path)
            #expect(left.isEmpty)
        }
    }

    @Test func sizeLabelsMatchGGUFPy() {
        #expect(GGUFExport.sizeLabel(133_440) == "133K")
        #expect(GGUFExport.sizeLabel(134_515_008) == "135M")
        #expect(GGUFExport.sizeLabel(1_235_814_400) == "1.2B")
        #expect(GGUFExport.sizeLabel(8_030_261_248) == "8.0B")
    }
}
