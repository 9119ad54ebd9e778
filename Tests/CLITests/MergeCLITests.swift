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
