// Reward model and policy in cycles (`labeller.refresh`): the section's keys are checked with clear
// errors; a refresh campaign on the starter policy commits rounds whose reward model moved, with
// finite rm/* metrics and a gold-pair file zstdcat reads; replay of a refresh round reproduces the
// new reward model and the policy bit for bit; kill -9 at any point (the rm_refresh phase among
// them) then resume gives the uninterrupted campaign's bits.

import Campaign
import Foundation
import Model
import Testing
import TestSupport

/// A refresh campaign on the starter policy: every round, all 12 prompts' samples gold-labelled
/// by the verifier, half of the prompts held out.
func refreshConfig(_ dir: URL, rounds: Int, refresh: String = "{every: 1, gold: {type: verifier}, samples_per_refresh: 48, epochs: 1, learning_rate: 1.0e-4, holdout_fraction: 0.5, batch_size: 8}") throws -> URL {
    let rm = repo.appendingPathComponent("policies/reward").path
    return try smallConfig(dir, rounds: rounds, extra: "labeller: {type: reward_model, model: \(rm), refresh: \(refresh)}")
}

@Suite(.serialized) struct RewardRefreshTests {
    let minimal = """
        policy: starter
        prompts: {train: p.jsonl, eval: e.jsonl}
        labeller:
          type: reward_model
          model: reward
          refresh:

        """

    @Test func refreshKeysAreChecked() throws {
        let cases: [(String, [String])] = [
            ("    every: 0\n    gold: {type: verifier}\n", ["labeller.refresh.every", "≥ 1"]),
            ("    gold: {type: verifier}\n    samples_per_refresh: 1\n", ["labeller.refresh.samples_per_refresh"]),
            ("    gold: {type: verifier}\n    epochs: 0\n", ["labeller.refresh.epochs"]),
            ("    gold: {type: verifier}\n    learning_rate: -1\n", ["labeller.refresh.learning_rate", "> 0"]),
            ("    gold: {type: verifier}\n    learning_rate: .nan\n", ["labeller.refresh.learning_rate"]),
            ("    gold: {type: verifier}\n    holdout_fraction: 1\n", ["labeller.refresh.holdout_fraction", "[0, 1)"]),
            ("    gold: {type: verifier}\n    batch_size: 0\n", ["labeller.refresh.batch_size"]),
            ("    gold: {type: reward_model, model: x}\n", ["labeller.refresh.gold.type", "verifier, command or http"]),
            ("    gold: {type: command}\n", ["labeller.refresh.gold.command", "required"]),
            ("    every: 2\n", ["gold", "required", "type: verifier"]),
            ("    gold: {type: verifier}\n    evry: 2\n", ["evry", "every"]),
        ]
        for (body, fragments) in cases {
            expectError(CampaignError.self, mentioning: ["c.yaml"] + fragments) {
                _ = try CampaignConfig.parse(minimal + body, source: "c.yaml")
            }
        }
        expectError(CampaignError.self, mentioning: ["labeller.refresh", "only for type reward_model", "verifier"]) {
            _ = try CampaignConfig.parse("policy: s\nprompts: {train: p, eval: e}\nlabeller: {type: verifier, refresh: {gold: {type: verifier}}}\n",
                                         source: "c.yaml")
        }
        // Defaults, and the resolved YAML reads back to the same config.
        let c = try CampaignConfig.parse(minimal + "    gold: {type: command, command: [./judge.py]}\n", source: "c.yaml")
        let r = try #require(c.labeller.refresh)
        #expect(r.every == 1 && r.samplesPerRefresh == 64 && r.epochs == 1 && r.holdoutFraction == 0.25 && r.gold.type == .command)
        #expect(try CampaignConfig.parse(c.yaml(), source: "resolved") == c)
    }

    @Test func refreshCampaignCommitsReplaysAndStoresItsPairs() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", try refreshConfig(dir, rounds: 2).path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            #expect(try committed(run) == [0, 1, 2])
            let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            let rows = try lines.map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
            var trainPairs = 0
            for r in 1...2 {
                let m = rows[r]
                for key in ["rm/gold_pair_accuracy_before", "rm/gold_pair_accuracy_after", "rm/dataset_pairs", "rm/new_pairs",
                            "rm/holdout_pairs", "rm/proxy_mean", "rm/gold_mean", "rm/gap", "rm/train_loss", "time/rm_refresh_s"] {
                    let v = m[key]?.double
                    #expect(v != nil && v!.isFinite, "round \(r): \(key) = \(String(describing: m[key]))")
                }
                #expect((m["rm/holdout_pairs"]?.double ?? 0) >= 1, "round \(r) has no held-out pairs")
                // The gold pairs, read with zstdcat: one JSON object a line, chosen scored above rejected.
                let file = run.appendingPathComponent("rounds/00000\(r)/rm_pairs.jsonl.zst")
                let cat = try runProgram(URL(fileURLWithPath: "/usr/bin/zstdcat"), [file.path])
                #expect(cat.status == 0, "\(cat.stderr)")
                let pairs = try cat.stdout.split(separator: "\n").map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
                #expect(Double(pairs.count) == m["rm/new_pairs"]?.double)
                for p in pairs {
                    #expect(p["round"]?.int == r && p["prompt_ids"]?.array != nil && p["chosen_ids"]?.array != nil)
                    #expect((p["gold_chosen"]?.double ?? .nan) > (p["gold_rejected"]?.double ?? .nan))
                }
                trainPairs += pairs.filter { $0["split"]?.string == "train" }.count
                // The dataset grows: every train pair so far.
                #expect(m["rm/dataset_pairs"]?.double == Double(trainPairs))
                // The refresh moved the reward model; the optimizer state is part of the round.
                let rd = run.appendingPathComponent("rounds/00000\(r)")
                let prev = run.appendingPathComponent("rounds/00000\(r - 1)/reward_model/model.safetensors")
                #expect(try sha256(of: rd.appendingPathComponent("reward_model/model.safetensors")) != sha256(of: prev))
                #expect(FileManager.default.fileExists(atPath: rd.appendingPathComponent("reward_model_optimizer.safetensors").path))
            }
            // Round 0 commits the configured reward model unchanged.
            #expect(try sha256(of: run.appendingPathComponent("rounds/000000/reward_model/model.safetensors"))
                    == sha256(of: repo.appendingPathComponent("policies/reward/model.safetensors")))
            for r in 1...2 {
                let replay = try runRondo(["replay", run.path, "--round", "\(r)"])
                #expect(replay.status == 0 && replay.stdout.contains("identical"), "round \(r): \(replay.stdout) \(replay.stderr)")
                #expect(replay.stdout.contains("reward_model/model.safetensors")
                        && replay.stdout.contains("reward_model_optimizer.safetensors"), "\(replay.stdout)")
            }
        }
    }

    @Test func kill9DuringRefreshThenResumeGivesTheSameBits() throws {
        try withTemporaryDirectory { dir in
            let phases = try killAndResume(config: try refreshConfig(dir, rounds: 4), rounds: 4, kills: 10, in: dir,
                                           files: ["policy/model.safetensors", "reward_model/model.safetensors", "metrics.json"])
            #expect((phases["rm_refresh"] ?? 0) >= 1, "no kill landed in rm_refresh: \(phases)")
        }
    }
}
