// PPO campaigns through the real `rondo` binary: the buffer holds values, advantages and returns,
// every round replays bit for bit (policy, value model and both optimizer states), a counterfactual
// replay differs, resume --from-round re-runs rounds identically, and SIGKILL at random points
// leaves a campaign that resumes to the uninterrupted result.

import Campaign
import Foundation
import Model
import Rollouts
import Testing
import TestSupport

let ppoAlgorithm = "{type: ppo, epochs: 2, batch_size: 16, learning_rate: 1.0e-4, kl_target: 0.5}"

@Suite(.serialized) struct PPOCampaignTests {
    @Test func roundsReplayBitForBitAndResume() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", try smallConfig(dir, algorithm: ppoAlgorithm).path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            #expect(try committed(run) == [0, 1, 2, 3])
            for f in ["value/model.safetensors", "value/config.json", "value_optimizer.safetensors"] {
                #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("rounds/000003/\(f)").path), "no \(f)")
            }
            // The value model is a checkpoint transformers reads as a one-label sequence classifier.
            let vc = try readConfigObject(run.appendingPathComponent("rounds/000003/value/config.json"))
            #expect(vc["architectures"]?.array?.first?.string == "LlamaForSequenceClassification")

            // TRL's metric names, and the adaptive KL coefficient moving with the observed KL.
            let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            let last = try JSONDecoder().decode(JSONValue.self, from: Data(lines[3].utf8))
            for key in ["objective/kl", "objective/entropy", "objective/non_score_reward", "objective/rlhf_reward", "objective/scores",
                        "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg", "loss/value_avg", "val/clipfrac_avg",
                        "val/ratio", "val/ratio_var", "eval/accuracy", "eval/kl_to_reference", "time/values_s"] {
                #expect(last[key]?.double?.isFinite == true, "metrics lack \(key): \(last)")
            }
            let status = try runRondo(["status", run.path])
            #expect(status.status == 0 && status.stdout.contains("scores") && status.stdout.contains("kl_coef"), "\(status.stdout)")
            let states = try (1...3).map { r in
                try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: run.appendingPathComponent("rounds/00000\(r)/round_state.json")))
            }
            #expect(Set(states.compactMap { $0["kl_coef"]?.double }).count == 3, "kl_coef should adapt every round")

            // The buffer: every sample has n advantages and min(n + 1, max_new_tokens) values and returns.
            var samples = 0
            try BufferReader(url: run.appendingPathComponent("rounds/000002/rollouts.jsonl.zst")).read { item in
                guard case .sample(let s) = item else { return }
                samples += 1
                let n = s.responseIDs.count
                #expect(s.advantages?.count == n && s.values?.count == min(n + 1, 4) && s.returns?.count == min(n + 1, 4))
            }
            #expect(samples == 48)

            for r in 1...3 {
                let replay = try runRondo(["replay", run.path, "--round", "\(r)"])
                #expect(replay.status == 0 && replay.stdout.contains("identical") && replay.stdout.contains("value/model.safetensors"),
                        "round \(r): \(replay.stdout) \(replay.stderr)")
            }
            let over = dir.appendingPathComponent("clip.yaml")
            try "algorithm:\n  cliprange: 0.05\n  lam: 0.9\n".write(to: over, atomically: true, encoding: .utf8)
            let cf = dir.appendingPathComponent("counterfactual")
            let c = try runRondo(["replay", run.path, "--round", "2", "--config", over.path, "--out", cf.path])
            #expect(c.status == 0 && c.stdout.contains("DIFFER"), "\(c.stdout) \(c.stderr)")
            #expect(FileManager.default.fileExists(atPath: cf.appendingPathComponent("value/model.safetensors").path))

            let before = try snapshot(run)
            #expect(try runRondo(["resume", run.path, "--from-round", "1"]).status == 0)
            let after = try snapshot(run)
            for (path, sha) in before where !path.hasSuffix("metrics.json") && !path.hasSuffix(".manifest.json") {
                #expect(after[path] == sha, "\(path) differs after resume --from-round")
            }
        }
    }

    /// With a reward-model labeller the value model starts as that reward model, unchanged.
    @Test func valueModelStartsFromTheRewardModel() throws {
        try withTemporaryDirectory { dir in
            let rm = repo.appendingPathComponent("policies/reward")
            let config = try smallConfig(dir, rounds: 1, extra: "labeller: {type: reward_model, model: \(rm.path)}",
                                         algorithm: ppoAlgorithm)
            let run = dir.appendingPathComponent("run")
            let r = try runRondo(["start", config.path, "--dir", run.path])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try sha256(of: run.appendingPathComponent("rounds/000000/value/model.safetensors"))
                    == sha256(of: rm.appendingPathComponent("model.safetensors")))
            #expect(try sha256(of: run.appendingPathComponent("rounds/000001/value/model.safetensors"))
                    != sha256(of: rm.appendingPathComponent("model.safetensors")))
        }
    }

    @Test func kill9AtRandomPointsThenResume() throws {
        try withTemporaryDirectory { dir in
            // More PPO epochs than the other tests, so the update lasts long enough for kills to land in it.
            let algorithm = ppoAlgorithm.replacingOccurrences(of: "epochs: 2", with: "epochs: 12")
            try killAndResume(config: try smallConfig(dir, rounds: 14, algorithm: algorithm), rounds: 14, kills: 24, in: dir,
                              files: ["metrics.json", "round_state.json", "policy/model.safetensors", "optimizer.safetensors",
                                      "value/model.safetensors", "value_optimizer.safetensors"])
        }
    }
}
