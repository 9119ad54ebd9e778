// `rondo merge` end to end: the merged directory equals PEFT's merge_and_unload output and exports.

import Foundation
import Model
import Testing
import TestSupport

@Suite struct MergeCLITests {
    @Test func mergeWritesPEFTsMergedModel() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("merged")
            let r = try runRondo(["merge", "--base", Fixtures.policy.path, "--adapter", LoRAFixture.adapterDir("rslora_r8").path,
                                  "--out", out.path])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(r.stderr.contains("4 projections (r 8, alpha 16.0, rsLoRA"), "\(r.stderr)")
            let mine = try ModelDirectory.load(out), peft = try ModelDirectory.load(LoRAFixture.mergedDir("rslora_r8"))
            #expect(mine.parameters.layout.entries == peft.parameters.layout.entries)
            let err = zip(mine.parameters.all, peft.parameters.all).map { abs($0 - $1) }.max() ?? .nan
            #expect(err <= 1e-6, "merged weights differ from PEFT's by \(err)")
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("tokenizer.json").path))
            let g = try runRondo(["export-gguf", out.path, "--out", dir.appendingPathComponent("m.gguf").path])
            #expect(g.status == 0, "stderr: \(g.stderr)")
        }
    }

    /// `generate --adapter` decodes with the merged weights: the same samples as the merged directory.
    /// `logprobs --adapter` scores base + adapter: within float rounding of the merged model's scores.
    @Test func generateAndLogprobsTakeAnAdapter() throws {
        try withTemporaryDirectory { dir in
            let adapter = LoRAFixture.adapterDir("lora_r4").path, merged = dir.appendingPathComponent("merged").path
            #expect(try runRondo(["merge", "--base", Fixtures.policy.path, "--adapter", adapter, "--out", merged]).status == 0)
            let prompts = dir.appendingPathComponent("p.jsonl")
            try Data("{\"prompt_ids\": [0, 313, 244, 21]}\n{\"prompt_ids\": [0, 151, 266]}\n".utf8).write(to: prompts)
            let common = ["--prompts", prompts.path, "--n", "2", "--temperature", "0.8", "--max-new-tokens", "12", "--seed", "4", "--threads", "1"]
            let a = try runRondo(["generate", "--model", Fixtures.policy.path, "--adapter", adapter] + common)
            let b = try runRondo(["generate", "--model", merged] + common)
            let plain = try runRondo(["generate", "--model", Fixtures.policy.path] + common)
            #expect(a.status == 0 && a.stdout == b.stdout && !a.stdout.isEmpty, "stderr: \(a.stderr)")
            #expect(a.stdout != plain.stdout)
            let example = CLITests.example.path
            let l1 = try runRondo(["logprobs", "--model", Fixtures.policy.path, "--adapter", adapter, "--input", example, "--threads", "1"])
            let l2 = try runRondo(["logprobs", "--model", merged, "--input", example, "--threads", "1"])
            #expect(l1.status == 0 && l2.status == 0, "stderr: \(l1.stderr)")
            func sums(_ s: String) throws -> [Float] {
                try s.split(separator: "\n").map { Float(try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8))["sum"]!.double!) }
            }
            let x = try sums(l1.stdout), y = try sums(l2.stdout)
            #expect(x.count == y.count && !x.isEmpty)
            expectClose(x, y, 1e-5, "logprobs --adapter vs the merged model")
        }
    }

    @Test func badAdapterExitsNonZeroAndWritesNothing() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("merged")
            let r = try runRondo(["merge", "--base", Fixtures.policy.path, "--adapter", dir.path, "--out", out.path])
            #expect(r.status != 0)
            #expect(r.stderr.contains("\(dir.path)/adapter_config.json: cannot read the PEFT adapter config"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out.path))
        }
    }
}
