// `rondo import-gguf` / `rondo export-gguf` end to end: exit codes, messages, files.

import Foundation
import Model
import Testing
import TestSupport

@Suite struct GGUFCLITests {
    @Test func importedModelScoresLikeTheOriginal() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("imported")
            let r = try runRondo(["import-gguf", Fixtures.gguf.appendingPathComponent("tiny-f32.gguf").path, "--out", out.path])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(r.stderr.contains("2 layers, hidden 64, vocab 320, tensors F32 21"))
            // The import is the policy: same log-probabilities, same tokenizer output.
            let example = CLITests.example.path
            let a = try runRondo(["logprobs", "--model", out.path, "--input", example, "--threads", "1"])
            let b = try runRondo(["logprobs", "--model", Fixtures.policy.path, "--input", example, "--threads", "1"])
            #expect(a.status == 0 && a.stdout == b.stdout, "stderr: \(a.stderr)")
            let text = "{\"text\": \"what is 2 + 3? <|eos|> héllo\"}\n"
            let t1 = try runRondo(["tokenize", "--tokenizer", out.path], stdin: text)
            let t2 = try runRondo(["tokenize", "--tokenizer", Fixtures.policy.path], stdin: text)
            #expect(t1.status == 0 && t1.stdout == t2.stdout)
        }
    }

    @Test func badFileExitsNonZeroAndWritesNothing() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("imported")
            let file = Fixtures.gguf.appendingPathComponent("bad-shape.gguf")
            let r = try runRondo(["import-gguf", file.path, "--out", out.path])
            #expect(r.status != 0)
            #expect(r.stderr.contains("\(file.path): tensor 'blk.1.attn_k.weight' has shape [64, 48] but the metadata needs [64, 32]"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out.path))
        }
    }

    @Test func exportThenImportRoundTrips() throws {
        try withTemporaryDirectory { dir in
            let file = dir.appendingPathComponent("p.gguf"), back = dir.appendingPathComponent("back")
            let e = try runRondo(["export-gguf", Fixtures.policy.path, "--out", file.path, "--type", "q8_0", "--name", "Rondo Tiny Policy"])
            #expect(e.status == 0, "stderr: \(e.stderr)")
            #expect(try Data(contentsOf: file) == Data(contentsOf: Fixtures.gguf.appendingPathComponent("tiny-q8_0.gguf")))
            let i = try runRondo(["import-gguf", file.path, "--out", back.path])
            #expect(i.status == 0, "stderr: \(i.stderr)")
            let got = try SafetensorsFile(url: back.appendingPathComponent("model.safetensors")).readAll()
            let want = try SafetensorsFile(url: Fixtures.gguf.appendingPathComponent("expected-q8_0.safetensors")).readAll()
            #expect(got == want)
            let bad = try runRondo(["export-gguf", Fixtures.policy.path, "--out", file.path, "--type", "q4_0"])
            #expect(bad.status != 0 && bad.stderr.contains("--type must be one of f32, f16, q8_0"))
        }
    }
}
