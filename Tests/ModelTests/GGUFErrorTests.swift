// Malformed and unsupported GGUF files (Tests/Fixtures/gguf/bad-*.gguf): each gets the error the
// fixture README names — the file, the key or tensor, the numbers — and nothing is written.

import Foundation
@testable import Model
import TestSupport
import Testing

/// bad-*.gguf → the parts its error message must contain.
private let badFiles: [(String, [String])] = [
    ("bad-magic.gguf", ["not a GGUF file: magic 'GGML' (47 47 4d 4c), expected 'GGUF'"]),
    ("bad-truncated.gguf", ["truncated: tensor 'blk.1.attn_v.weight' needs bytes [124928, 126080), file has 125504"]),
    ("bad-tensor-type.gguf", ["tensor 'blk.0.attn_q.weight': unknown ggml type id 99"]),
    ("bad-shape.gguf", ["tensor 'blk.1.attn_k.weight' has shape [64, 48] but the metadata needs [64, 32]"]),
    ("bad-arch-qwen3moe.gguf", ["unsupported architecture 'qwen3moe' (supported: llama)"]),
    ("bad-missing-tensor.gguf", ["missing tensor 'blk.1.ffn_up.weight' (llama.block_count = 2)"]),
    ("bad-kv-length.gguf", ["metadata 'general.name': string length 4611686018427387904 runs past the end of the file"]),
]

private func importError(_ file: URL, out: URL) -> String? {
    do {
        try GGUFImport.run(file: file, out: out)
        return nil
    } catch {
        return "\(error)"
    }
}

@Suite struct GGUFErrorTests {
    @Test(arguments: badFiles)
    func badFileGetsItsError(file: String, parts: [String]) throws {
        try withTemporaryDirectory { tmp in
            let path = Fixtures.gguf.appendingPathComponent(file)
            let out = tmp.appendingPathComponent("model")
            let message = try #require(importError(path, out: out), "\(file) imported without an error")
            #expect(message.hasPrefix(path.path + ": "), "the error names the file: \(message)")
            for p in parts { #expect(message.contains(p), "\(file): \(message)") }
            // Nothing at --out, and no temporary directory left beside it.
            let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path)
            #expect(left.isEmpty)
        }
    }

    @Test func knownButUnsupportedTypeIsNamed() throws {
        // bad-tensor-type.gguf with id 16 (IQ2_XXS) instead of 99 at byte 6,884.
        var data = try Data(contentsOf: Fixtures.gguf.appendingPathComponent("bad-tensor-type.gguf"))
        #expect(data[6884] == 99)
        data[6884] = 16
        #expect(throws: ModelError.self) { try GGUFFile(data: data, path: "x.gguf") }
        do { _ = try GGUFFile(data: data, path: "x.gguf") } catch {
            #expect("\(error)".contains("tensor 'blk.0.attn_q.weight': ggml type IQ2_XXS (id 16) is not supported"))
        }
    }

    @Test func everyTruncationFailsCleanly() throws {
        // Cut the header anywhere: always an error naming the file, never a crash.
        let data = try Data(contentsOf: Fixtures.gguf.appendingPathComponent("tiny-q4_0.gguf"))
        for cut in stride(from: 0, to: 7600, by: 37) {
            do {
                _ = try GGUFFile(data: data.prefix(cut), path: "cut.gguf")
                Issue.record("a file cut at byte \(cut) opened")
            } catch {
                #expect("\(error)".hasPrefix("cut.gguf: "), "cut at \(cut): \(error)")
            }
        }
    }

    @Test func hugeArrayCountIsRefusedBeforeAllocating() throws {
        var s = ByteSink()
        s.append(Array("GGUF".utf8)); s.append(UInt32(3)); s.append(UInt64(0)); s.append(UInt64(1))
        s.append("tokenizer.ggml.tokens"); s.append(GGUFValueType.array.rawValue)
        s.append(GGUFValueType.string.rawValue); s.append(UInt64(1) << 60)
        do {
            _ = try GGUFFile(data: Data(s.bytes), path: "huge.gguf")
            Issue.record("a 2^60-element array was accepted")
        } catch {
            #expect("\(error)".contains("metadata 'tokenizer.ggml.tokens': array length 1152921504606846976 runs past the end of the file"))
        }
    }

    @Test func existingOutputIsNeverOverwritten() throws {
        try withTemporaryDirectory { tmp in
            let out = tmp.appendingPathComponent("model")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            try Data("keep".utf8).write(to: out.appendingPathComponent("note.txt"))
            let message = importError(Fixtures.gguf.appendingPathComponent("tiny-f32.gguf"), out: out)
            #expect(message?.contains("already exists") == true)
            let left = try FileManager.default.contentsOfDirectory(atPath: out.path)
            #expect(left == ["note.txt"])
        }
    }

    @Test func extraTensorIsRefused() throws {
        // quant-blocks.gguf's tensors are not a model; relabelled llama it must fail by name.
        let src = try GGUFFile(url: Fixtures.gguf.appendingPathComponent("tiny-f32.gguf"))
        let blocks = try GGUFFile(url: Fixtures.gguf.appendingPathComponent("quant-blocks.gguf"))
        let q = try #require(rawTensors(blocks).first { $0.name == "q8_0" })
        let tensors = rawTensors(src) + [GGUFTensorData(name: "rope_freqs.weight", ne: q.ne, type: q.type, encode: q.encode)]
        try withTemporaryDirectory { tmp in
            let file = tmp.appendingPathComponent("extra.gguf")
            try GGUFWriter.write(metadata: src.keys.map { ($0, src.metadata[$0]!) }, tensors: tensors, to: file)
            let message = importError(file, out: tmp.appendingPathComponent("model"))
            #expect(message?.contains("unexpected tensor 'rope_freqs.weight'") == true, "\(message ?? "no error")")
        }
    }
}
