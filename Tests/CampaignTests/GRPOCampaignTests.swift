// GRPO campaigns through the real `rondo` binary: groups of sampling.n samples per prompt, the
// buffer holds each sample's group-relative advantage per token, every round replays bit for bit,
// a counterfactual replay differs, resume --from-round re-runs rounds identically, and SIGKILL at
// random points leaves a campaign that resumes to the uninterrupted result.

import Campaign
import Foundation
import Model
import Rollouts
import Testing
import TestSupport

let grpoAlgorithm = "{type: grpo, batch_size: 16, learning_rate: 1.0e-4, grpo: {beta: 0.04, num_iterations: 2}}"

@Suite(.serialized) struct GRPOCampaignTests {
    @Test func roundsReplayBitForBitAndResume() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", try smallConfig(dir, algorithm: grpoAlgorithm).path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            #expect(try committed(run) == [0, 1, 2, 3])

            // TRL's metric names.
            let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            let last = try JSONDecoder().decode(JSONValue.self, from: Data(lines[3].utf8))
            for key in ["reward", "reward_std", "rewards/reward/mean", "frac_reward_zero_std", "loss", "kl", "entropy",
                        "clip_ratio/region_mean", "grad_norm", "eval/accuracy", "time/advantages_s"] {
                #expect(last[key]?.double?.isFinite == true, "metrics lack \(key): \(last)")
            }
            #expect(last["train/steps"]?.double == 6, "12 prompts × 4 samples in minibatches of 16, 2 iterations: \(last)")
            let status = try runRondo(["status", run.path])
            #expect(status.status == 0 && status.stdout.contains("frac_reward_zero_std"), "\(status.stdout)")

            // The buffer: groups of 4 samples per prompt; a sample's advantage on each of its tokens,
            // zero-mean within each group (scale_rewards group).
            var advantages: [Int: [Float]] = [:]
            try BufferReader(url: run.appendingPathComponent("rounds/000002/rollouts.jsonl.zst")).read { item in
                guard case .sample(let s) = item else { return }
                let a = s.advantages ?? []
                #expect(a.count == s.responseIDs.count && Set(a).count <= 1)
                advantages[s.promptIndex, default: []].append(a.first ?? 0)
            }
            #expect(advantages.count == 12 && advantages.values.allSatisfy { $0.count == 4 })
            for g in advantages.values { #expect(abs(g.reduce(0, +)) < 1e-4, "group advantages \(g)") }

            for r in 1...3 {
                let replay = try runRondo(["replay", run.path, "--round", "\(r)"])
                #expect(replay.status == 0 && replay.stdout.contains("identical") && replay.stdout.contains("advantages recomputed"),
                        "round \(r): \(replay.stdout) \(replay.stderr)")
            }
            let over = dir.appendingPathComponent("eps.yaml")
            try "algorithm:\n  grpo: {beta: 0.04, num_iterations: 2, epsilon: 0.01}\n".write(to: over, atomically: true, encoding: .utf8)
            let c = try runRondo(["replay", run.path, "--round", "2", "--config", over.path, "--out", dir.appendingPathComponent("cf").path])
            #expect(c.status == 0 && c.stdout.contains("DIFFER"), "\(c.stdout) \(c.stderr)")

            let before = try snapshot(run)
            #expect(try runRondo(["resume", run.path, "--from-round", "1"]).status == 0)
            let after = try snapshot(run)
            for (path, sha) in before where !path.hasSuffix("metrics.json") && !path.hasSuffix(".manifest.json") {
                #expect(after[path] == sha, "\(path) differs after resume --from-round")
            }
        }
    }

    /// RLOO is one more file on the same loop: leave-one-out advantages (with the k1 KL penalty of
    /// beta 0.05, TRL's default) zero-sum within each group, TRL's metric names, bit-for-bit replays.
    @Test func rlooRoundsReplayBitForBit() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let algorithm = "{type: rloo, batch_size: 16, learning_rate: 1.0e-4, rloo: {num_iterations: 2}}"
            let start = try runRondo(["start", try smallConfig(dir, algorithm: algorithm).path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            #expect(try committed(run) == [0, 1, 2, 3])
            let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            let last = try JSONDecoder().decode(JSONValue.self, from: Data(lines[3].utf8))
            for key in ["reward", "frac_reward_zero_std", "kl", "loss", "entropy", "clip_ratio/region_mean", "grad_norm"] {
                #expect(last[key]?.double?.isFinite == true, "metrics lack \(key): \(last)")
            }
            #expect(last["train/steps"]?.double == 6, "12 prompts × 4 samples in minibatches of 16, 2 iterations: \(last)")
            var advantages: [Int: [Float]] = [:]
            try BufferReader(url: run.appendingPathComponent("rounds/000002/rollouts.jsonl.zst")).read { item in
                guard case .sample(let s) = item else { return }
                advantages[s.promptIndex, default: []].append(s.advantages?.first ?? .nan)
            }
            #expect(advantages.count == 12 && advantages.values.allSatisfy { $0.count == 4 })
            for g in advantages.values { #expect(abs(g.reduce(0, +)) < 1e-3, "leave-one-out advantages \(g)") }
            for r in 1...3 {
                let replay = try runRondo(["replay", run.path, "--round", "\(r)"])
                #expect(replay.status == 0 && replay.stdout.contains("identical") && replay.stdout.contains("advantages recomputed"),
                        "round \(r): \(replay.stdout) \(replay.stderr)")
            }
        }
    }

    @Test func groupsNeedTwoSamplesAndTemperatureOne() {
        for (extra, key) in [("sampling: {n: 1}", "sampling.n"), ("sampling: {temperature: 0.7}", "sampling.temperature")] {
            expectError(CampaignError.self, mentioning: [key, "GRPO"]) {
                _ = try CampaignConfig.parse("policy: p\nprompts: {train: t, eval: e}\nalgorithm: {type: grpo}\n\(extra)\n", source: "c.yaml")
            }
        }
        expectError(CampaignError.self, mentioning: ["'algorithm.grpo.epsilon' (line 3)"]) {
            _ = try CampaignConfig.parse("policy: p\nprompts: {train: t, eval: e}\nalgorithm: {type: grpo, grpo: {epsilon: -1}}\n", source: "c.yaml")
        }
        expectError(CampaignError.self, mentioning: ["sampling.n", "RLOO"]) {
            _ = try CampaignConfig.parse("policy: p\nprompts: {train: t, eval: e}\nalgorithm: {type: rloo}\nsampling: {n: 1}\n", source: "c.yaml")
        }
        expectError(CampaignError.self, mentioning: ["'algorithm.rloo.epsilon' (line 3)"]) {
            _ = try CampaignConfig.parse("policy: p\nprompts: {train: t, eval: e}\nalgorithm: {type: rloo, rloo: {epsilon: -1}}\n", source: "c.yaml")
        }
    }

    @Test func kill9AtRandomPointsThenResume() throws {
        try withTemporaryDirectory { dir in
            let algorithm = grpoAlgorithm.replacingOccurrences(of: "num_iterations: 2", with: "num_iterations: 8")
            try killAndResume(config: try smallConfig(dir, rounds: 10, algorithm: algorithm), rounds: 10, kills: 12, in: dir,
                              files: ["metrics.json", "round_state.json", "policy/model.safetensors", "optimizer.safetensors"])
        }
    }
}
