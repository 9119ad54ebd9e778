// LoRA through the training jobs: `--eval-only` with a PEFT adapter reproduces TRL's and HF's
// losses on the fixture batches (reference = the base with the adapter off); a LoRA run writes a
// PEFT adapter, leaves the base untouched and learns (sft, dpo, and rm with its score head trained
// beside the adapter); an interrupted LoRA run resumed from its adapter checkpoint equals the
// uninterrupted run bit for bit; a reward-model adapter written and reloaded scores bit for bit as
// before, and adapters of the wrong kind are refused with the reason.

import Foundation
import Model
import Testing
import TestSupport
@testable import Training

@Suite(.serialized) struct LoRATrainingTests {
    static func jsonLine(_ fields: [String: [Int]]) -> String {
        "{" + fields.keys.sorted().map { "\"\($0)\": [\(fields[$0]!.map(String.init).joined(separator: ", "))]" }.joined(separator: ", ") + "}"
    }

    @Test(arguments: LoRAFixture.names) func evalOnlyWithAdapterMatchesTheFixtures(name: String) throws {
        try withTemporaryDirectory { dir in
            let inputs = LoRAFixture.cases["inputs"]!
            let prefs = dir.appendingPathComponent("prefs.jsonl")
            let lines = inputs["dpo_batch"]!["triples"]!.array!.map { t in
                Self.jsonLine(["prompt_ids": Oracle.ints(t["prompt_ids"]), "chosen_ids": Oracle.ints(t["chosen_ids"]),
                               "rejected_ids": Oracle.ints(t["rejected_ids"])])
            }
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: prefs)
            var o = DPOOptions(model: Oracle.policyDir, data: prefs, out: nil)
            o.evalOnly = true; o.threads = 1
            o.lora = LoRAJobOptions(adapter: LoRAFixture.adapterDir(name))
            let json = try JSONDecoder().decode(JSONValue.self, from: Data(try DPOJob.run(o).utf8))
            let expected = LoRAFixture.adapter(name)["dpo_sigmoid"]!
            expectClose([Float(json["loss"]!.double!)], LoRAFixture.floats(expected["loss"]), 1e-5, "\(name) dpo --eval-only loss")
            expectClose([Float(json["rewards/margins"]!.double!)], LoRAFixture.floats(expected["reward_margin"]), 1e-4, "\(name) margin")

            let sft = inputs["sft_batch"]!
            let ids = Oracle.ints(sft["input_ids"]), labels = Oracle.ints(sft["labels"]), mask = Oracle.ints(sft["attention_mask"])
            let T = ids.count / 3
            let completions = dir.appendingPathComponent("sft.jsonl")
            let sftLines = (0..<3).map { b -> String in
                let row = Array(ids[(b * T)..<(b * T + T)]), len = mask[(b * T)..<(b * T + T)].reduce(0, +)
                let p = (1..<T).first { labels[b * T + $0] != -100 }!
                return Self.jsonLine(["prompt_ids": Array(row[0..<p]), "completion_ids": Array(row[p..<len])])
            }
            try Data((sftLines.joined(separator: "\n") + "\n").utf8).write(to: completions)
            var s = SFTOptions(model: Oracle.policyDir, data: completions, out: nil)
            s.evalOnly = true; s.threads = 1
            s.lora = LoRAJobOptions(adapter: LoRAFixture.adapterDir(name))
            let sj = try JSONDecoder().decode(JSONValue.self, from: Data(try SFTJob.run(s).utf8))
            expectClose([Float(sj["loss"]!.double!)], LoRAFixture.floats(LoRAFixture.adapter(name)["sft"]!["loss"]), 1e-5, "\(name) sft --eval-only loss")
        }
    }

    /// Runs `job` with a new r = 4 adapter on every projection (or from `adapter` when resuming).
    func trainLoRA(_ job: Job, model: URL, data: URL, out: URL, adapter: URL? = nil, resume: Bool = false,
                   _ edit: (inout RunOptions, inout OptimizerOptions) -> Void) throws {
        let fresh = LoRAJobOptions(new: try LoRAConfig(r: 4, alpha: 8, targets: LoRATarget.allCases))
        let lora = adapter.map { LoRAJobOptions(adapter: $0) } ?? fresh
        switch job {
        case .sft:
            var o = SFTOptions(model: model, data: data, out: out)
            o.optimizer.lr = 1e-2; o.lora = lora; o.resume = resume; o.threads = 2
            edit(&o.run, &o.optimizer)
            _ = try SFTJob.run(o)
        case .dpo:
            var o = DPOOptions(model: model, data: data, out: out)
            o.optimizer.lr = 1e-2; o.lora = lora; o.resume = resume; o.threads = 2
            edit(&o.run, &o.optimizer)
            _ = try DPOJob.run(o)
        case .rm:
            var o = RewardOptions(model: model, data: data, out: out)
            o.optimizer.lr = 1e-2; o.lora = lora; o.resume = resume; o.threads = 2
            edit(&o.run, &o.optimizer)
            _ = try RewardJob.run(o)
        }
    }

    /// The config an adapter of `job` fits: the base, or (rm) the base as a reward model.
    static func adapterBase(_ job: Job, _ model: URL) throws -> LlamaConfig {
        let loaded = try ModelDirectory.load(model)
        return job == .rm ? loaded.asRewardModel(seed: 0).0 : loaded.config
    }

    @Test(arguments: [Job.sft, Job.dpo, Job.rm])
    func loraRunWritesAnAdapterLearnsAndResumesBitForBit(job: Job) throws {
        try withTemporaryDirectory { dir in
            let (model, data) = try tinySetup(job, dir, n: 64)
            let baseBytes = try Data(contentsOf: model.appendingPathComponent("model.safetensors"))
            let full = dir.appendingPathComponent("full"), part = dir.appendingPathComponent("part"), rest = dir.appendingPathComponent("rest")
            func opts(_ r: inout RunOptions, _ o: inout OptimizerOptions) {
                r.batchSize = 8; r.epochs = 3; o.warmupSteps = 2; o.schedule = .cosine; o.adamw.weightDecay = 0.1
            }
            try trainLoRA(job, model: model, data: data, out: full, opts)
            #expect(try Data(contentsOf: model.appendingPathComponent("model.safetensors")) == baseBytes, "the base must stay frozen")
            let files = try FileManager.default.contentsOfDirectory(atPath: full.path)
            #expect(files.contains("adapter_model.safetensors") && files.contains("adapter_config.json") && !files.contains("model.safetensors"))
            let adapter = try LoRAAdapter.load(from: full, model: try Self.adapterBase(job, model))
            #expect(adapter.config.r == 4 && adapter.config.targets == LoRATarget.allCases)
            #expect((adapter.scoreOffset != nil) == (job == .rm), "a reward model's adapter carries its score head")
            let losses = try metricLines(full).map { $0["loss"]!.double! }
            if job == .rm {
                // A reward model's step losses are single minibatches of 8 pairs (noisy): compare the
                // loss over all pairs before (fresh adapter: the base's score head) and after.
                func evalLoss(_ lora: LoRAJobOptions) throws -> Double {
                    var o = RewardOptions(model: model, data: data, out: nil)
                    o.evalOnly = true; o.lora = lora; o.threads = 2
                    return try JSONDecoder().decode(JSONValue.self, from: Data(try RewardJob.run(o).utf8))["loss"]!.double!
                }
                let before = try evalLoss(LoRAJobOptions(new: try LoRAConfig(r: 4, alpha: 8, targets: LoRATarget.allCases)))
                let after = try evalLoss(LoRAJobOptions(adapter: full))
                #expect(after < before - 0.05, "rm LoRA loss over every pair \(before) → \(after); steps \(losses)")
            } else {
                #expect(losses.last! < losses.first! - 0.05, "\(job) LoRA loss \(losses.first!) → \(losses.last!)")
            }

            try trainLoRA(job, model: model, data: data, out: part) { r, o in opts(&r, &o); r.stopAtStep = 5 }
            try trainLoRA(job, model: model, data: data, out: rest, adapter: part, resume: true, opts)
            for file in ["adapter_model.safetensors", "optimizer.safetensors", "metrics.jsonl"] {
                let x = try Data(contentsOf: full.appendingPathComponent(file)), y = try Data(contentsOf: rest.appendingPathComponent(file))
                #expect(x == y, "\(job): LoRA \(file) of 5 + rest steps differs from the uninterrupted run")
            }
            // Resuming on another base, or as a full fine-tune, is refused.
            let other = dir.appendingPathComponent("other")
            try TinyTask.writeModel(other, seed: 8)
            #expect { try trainLoRA(job, model: other, data: data, out: dir.appendingPathComponent("x"), adapter: part, resume: true, opts) } throws: {
                "\($0)".contains("trained on the base")
            }
            #expect { _ = try train(job, model: part, data: data, out: dir.appendingPathComponent("y"), opts, resume: true) } throws: { _ in true }
        }
    }

    /// `rm train` with both a new and an existing adapter (CLI), with --lora-r and --resume, or with
    /// a causal-LM adapter is refused with the reason.
    @Test func rewardLoRAWrongCombinationsAreRefused() throws {
        try withTemporaryDirectory { dir in
            let (model, data) = try tinySetup(.rm, dir)
            let causal = dir.appendingPathComponent("causal")
            try LoRAAdapter(config: try LoRAConfig(r: 4, alpha: 8, targets: [.q, .v]), model: try TinyTask.config())
                .save(to: causal, baseModel: model.path)
            let both = try runRondo(["rm", "train", "--model", model.path, "--data", data.path, "--out", dir.appendingPathComponent("o").path,
                                     "--lora-r", "4", "--adapter", causal.path])
            #expect(both.status != 0 && both.stderr.contains("give only one of them"), "\(both.stderr)")
            func run(_ lora: LoRAJobOptions, resume: Bool = false, evalOnly: Bool = false) throws {
                var o = RewardOptions(model: model, data: data, out: dir.appendingPathComponent("o"))
                o.lora = lora; o.resume = resume; o.evalOnly = evalOnly; o.threads = 1
                _ = try RewardJob.run(o)
            }
            let fresh = try LoRAConfig(r: 4, alpha: 8, targets: [.q, .v])
            #expect { try run(LoRAJobOptions(new: fresh), resume: true) } throws: { "\($0)".contains("pass it as --adapter DIR") }
            #expect { try run(LoRAJobOptions(adapter: causal), evalOnly: true) } throws: { "\($0)".contains("CAUSAL_LM") && "\($0)".contains("reward model") }
        }
    }
}
