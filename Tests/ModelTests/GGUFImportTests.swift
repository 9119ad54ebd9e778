// GGUF import against the fixtures of Tests/Fixtures/gguf (README.md there): every model file
// imports to bit-identical tensors, transformers' config and the original tokenizer; every block
// type dequantises bit for bit; every malformed file gets the error the README names, and nothing
// is written.

import Foundation
@testable import Model
import TestSupport
import Testing

private let modelTypes = ["f32", "f16", "q8_0", "q4_0", "q4_1"]

/// Expects every tensor of `got` to have the bits of `want`'s tensor of the same name.
private func expectBitIdentical(_ got: [String: Tensor], _ want: [String: Tensor], _ label: String,
                                sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.keys.sorted() == want.keys.sorted(), "\(label): tensor names", sourceLocation: sourceLocation)
    for (name, w) in want {
        guard let g = got[name] else { continue }
        #expect(g.shape == w.shape, "\(label): \(name) shape", sourceLocation: sourceLocation)
        let differing = zip(g.values, w.values).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(g.values.count == w.values.count && differing == 0,
                "\(label): \(name): \(differing) of \(w.values.count) values differ in their bits", sourceLocation: sourceLocation)
    }
}

private func jsonObject(_ url: URL) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
}

/// Imports `Tests/Fixtures/gguf/<fixture>` into a temporary directory and runs `body` on it.
private func withImport(_ fixture: String, _ body: (URL) throws -> Void) throws {
    try withTemporaryDirectory { tmp in
        let out = tmp.appendingPathComponent("model")
        try GGUFImport.run(file: Fixtures.gguf.appendingPathComponent(fixture), out: out)
        try body(out)
    }
}

@Suite struct GGUFImportTests {
    @Test(arguments: modelTypes)
    func importsBitIdenticalTensors(type: String) throws {
        try withImport("tiny-\(type).gguf") { out in
            let got = try SafetensorsFile(url: out.appendingPathComponent("model.safetensors"))
            #expect(got.infos.values.allSatisfy { $0.dtype == .f32 })
            let want = try SafetensorsFile(url: Fixtures.gguf.appendingPathComponent("expected-\(type).safetensors"))
            expectBitIdentical(try got.readAll(), try want.readAll(), type)
            // The import loads as a Rondo model.
            _ = try ModelDirectory.load(out)
        }
    }

    @Test func f32ImportEqualsTheOriginalPolicy() throws {
        try withImport("tiny-f32.gguf") { out in
            let got = try SafetensorsFile(url: out.appendingPathComponent("model.safetensors")).readAll()
            let want = try SafetensorsFile(url: Fixtures.policy.appendingPathComponent("model.safetensors")).readAll()
            expectBitIdentical(got, want, "f32 vs policy")
        }
    }

    @Test func configMatchesTransformers() throws {
        try withImport("tiny-q4_0.gguf") { out in
            let got = try readConfigObject(out.appendingPathComponent("config.json"))
            let want = try readConfigObject(Fixtures.gguf.appendingPathComponent("expected-hf/config.json"))
            for (key, value) in want where key != "transformers_version" {
                if key == "rms_norm_eps" {
                    #expect(got[key]?.double.map(Float.init) == value.double.map(Float.init), "rms_norm_eps as float32")
                } else {
                    #expect(got[key] == value, "config key \(key): \(String(describing: got[key])) vs \(value)")
                }
            }
        }
    }

    @Test func tokenizerMatchesTheOriginal() throws {
        try withImport("tiny-f16.gguf") { out in
            let got = try jsonObject(out.appendingPathComponent("tokenizer.json"))
            let want = try jsonObject(Fixtures.gguf.appendingPathComponent("expected-hf/tokenizer.json"))
            let gm = try #require(got["model"] as? [String: Any]), wm = try #require(want["model"] as? [String: Any])
            #expect(gm["vocab"] as? [String: Int] == wm["vocab"] as? [String: Int])
            #expect(gm["merges"] as? [[String]] == wm["merges"] as? [[String]])
            #expect((gm["merges"] as? [[String]])?.count == 61)
            // The pre-tokenizer and decoder as transformers builds them; its <|endoftext|> id 320 is
            // transformers' addition, not in the GGUF.
            for key in ["pre_tokenizer", "decoder", "normalizer", "post_processor"] {
                #expect(NSDictionary(dictionary: ["v": got[key] ?? NSNull()]) == NSDictionary(dictionary: ["v": want[key] ?? NSNull()]), "\(key)")
            }
            let added = (got["added_tokens"] as? [[String: Any]])?.map { "\($0["id"]!) \($0["content"]!) \(($0["special"] as? Bool) == true)" }
            #expect(added == ["0 <|bos|> true", "1 <|eos|> true", "2 <|pad|> true"])
            // The imported tokenizer is the original one: same ids on the original's files.
            let cfg = try jsonObject(out.appendingPathComponent("tokenizer_config.json"))
            #expect(cfg["bos_token"] as? String == "<|bos|>")
            #expect(cfg["eos_token"] as? String == "<|eos|>")
            #expect(cfg["pad_token"] as? String == "<|pad|>")
            #expect(cfg["unk_token"] is NSNull)
            #expect(cfg["chat_template"] == nil)
            let gen = try jsonObject(out.appendingPathComponent("generation_config.json"))
            #expect(gen["eos_token_id"] as? Int == 1)
        }
    }

    /// quant-blocks.gguf: one 4×256 tensor per block type, decoded bit for bit.
    @Test func everyBlockTypeDequantisesExactly() throws {
        let f = try GGUFFile(url: Fixtures.gguf.appendingPathComponent("quant-blocks.gguf"))
        let want = try SafetensorsFile(url: Fixtures.gguf.appendingPathComponent("quant-blocks-expected.safetensors"))
        let names = ["f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"]
        #expect(Set(f.tensors.map(\.name)) == Set(names))
        for name in names {
            let t = try #require(f.tensor(name))
            #expect(t.type.name.lowercased() == name)
            var got = [Float](repeating: .nan, count: t.count)
            try got.withUnsafeMutableBufferPointer { try f.read(t, into: $0) }
            let w = try want.tensor(name)
            #expect(w.shape == t.shape)
            let differing = zip(got, w.values).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "\(name): \(differing) of \(got.count) values differ in their bits")
        }
    }

    @Test func chatTemplateAndEndOfTurnCarryThrough() throws {
        // A copy of tiny-f32.gguf with a chat template, add_bos_token and an end-of-turn id added.
        let src = try GGUFFile(url: Fixtures.gguf.appendingPathComponent("tiny-f32.gguf"))
        var metadata = src.keys.map { ($0, src.metadata[$0]!) }
        let template = "{% for m in messages %}<|bos|>{{ m['content'] }}<|eos|>{% endfor %}"
        metadata.insert(("tokenizer.chat_template", .string(template)), at: metadata.count - 1)
        metadata.insert(("tokenizer.ggml.add_bos_token", .bool(true)), at: metadata.count - 1)
        metadata.insert(("tokenizer.ggml.eot_token_id", .uint32(2)), at: metadata.count - 1)
        try withTemporaryDirectory { tmp in
            let file = tmp.appendingPathComponent("chat.gguf")
            try rewriteGGUF(src, metadata: metadata, to: file)
            let out = tmp.appendingPathComponent("model")
            let summary = try GGUFImport.run(file: file, out: out)
            #expect(summary.hasChatTemplate)
            let cfg = try jsonObject(out.appendingPathComponent("tokenizer_config.json"))
            #expect(cfg["chat_template"] as? String == template)
            #expect(cfg["add_bos_token"] as? Bool == true)
            let gen = try jsonObject(out.appendingPathComponent("generation_config.json"))
            #expect(gen["eos_token_id"] as? [Int] == [1, 2])
            let tok = try jsonObject(out.appendingPathComponent("tokenizer.json"))
            let pp = try #require(tok["post_processor"] as? [String: Any])
            #expect((pp["special_tokens"] as? [String: Any])?.keys.sorted() == ["<|bos|>"])
        }
    }
}

/// `src`'s tensors as they are stored (raw bytes, same types), for writing into a new file.
func rawTensors(_ src: GGUFFile) -> [GGUFTensorData] {
    src.tensors.map { t in
        src.withBytes(t) { p in
            GGUFTensorData(name: t.name, ne: t.ne, type: t.type, bytes: Array(UnsafeRawBufferPointer(start: p, count: t.bytes.count)))
        }
    }
}

/// Writes `src`'s tensors with `metadata` as a new GGUF file.
func rewriteGGUF(_ src: GGUFFile, metadata: [(String, GGUFValue)], to url: URL) throws {
    try GGUFWriter.write(metadata: metadata, tensors: rawTensors(src), to: url)
}
