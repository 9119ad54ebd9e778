// `sampling.policy: initial` (offline DPO): every round samples from the starting policy. Checked
// against the sampler itself: round 2's buffer holds exactly what the starting policy samples for
// its prompts and seeds, and not what round 1's policy would (so the check can fail). The algorithms
// that need on-policy samples refuse the key.

import Campaign
import Foundation
import Model
import Rollouts
import Sampling
import Testing
import TestSupport

@Suite(.serialized) struct SamplingPolicyTests {
    /// Round `r`'s samples: prompt ids by prompt index, responses by (prompt, sample) index, the round's seed.
    func samples(_ run: URL, round r: Int) throws -> (prompts: [Int: [Int32]], responses: [[Int]: [Int32]], seed: UInt64?) {
        var prompts: [Int: [Int32]] = [:], responses: [[Int]: [Int32]] = [:], seed: UInt64? = nil
        try BufferReader(url: run.appendingPathComponent(String(format: "rounds/%06d/rollouts.jsonl.zst", r))).read { item in
            guard case .sample(let s) = item else { return }
            prompts[s.promptIndex] = s.promptIDs
            responses[[s.promptIndex, s.sampleIndex]] = s.responseIDs
            seed = s.seed.seed
        }
        return (prompts, responses, seed)
    }

    /// What the model in `dir` samples for `prompts` with the campaign's sampling settings and `seed`.
    func resample(_ dir: URL, _ config: CampaignConfig, prompts: [Int: [Int32]], seed: UInt64) throws -> [[Int]: [Int32]] {
        let loaded = try ModelDirectory.load(dir)
        var sc = config.sampling.samplingConfig
        sc.seed = seed
        let out = try Sampler(model: LlamaModel(config: loaded.config, parameters: loaded.parameters), config: sc)
            .generate((0..<prompts.count).map { prompts[$0]! })
        return Dictionary(uniqueKeysWithValues: out.map { ([$0.promptIndex, $0.sampleIndex], $0.tokens) })
    }

    @Test func initialSamplesEveryRoundFromTheStartingPolicy() throws {
        try withTemporaryDirectory { dir in
            let url = try smallConfig(dir, rounds: 2)
            let text = try String(contentsOf: url, encoding: .utf8)
            try text.replacingOccurrences(of: "batch_size: 16}", with: "batch_size: 16, policy: initial}")
                .write(to: url, atomically: true, encoding: .utf8)
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", url.path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            let config = try CampaignConfig.load(run.appendingPathComponent("config.yaml"))
            #expect(config.sampling.policy == .initial)

            let round2 = try samples(run, round: 2)
            let seed = try #require(round2.seed)
            #expect(round2.prompts.count == 12 && round2.responses.count == 48)
            let starter = repo.appendingPathComponent("policies/starter")
            #expect(try resample(starter, config, prompts: round2.prompts, seed: seed) == round2.responses,
                    "round 2's buffer is not what the starting policy samples")
            // Round 1's update moved the policy: it would have sampled otherwise.
            let round1Policy = run.appendingPathComponent("rounds/000001/policy")
            #expect(try resample(round1Policy, config, prompts: round2.prompts, seed: seed) != round2.responses,
                    "round 1's policy samples the same; the check above cannot tell the policies apart")
            let replay = try runRondo(["replay", run.path, "--round", "2"])
            #expect(replay.status == 0 && replay.stdout.contains("identical"), "\(replay.stdout) \(replay.stderr)")
        }
    }

    @Test func onPolicyAlgorithmsRefuseInitialSampling() throws {
        let base = """
            policy: starter
            prompts: {train: p.jsonl, eval: e.jsonl}
            sampling: {n: 4, policy: initial}
            """
        #expect(try CampaignConfig.parse(base, source: "dpo.yaml").sampling.policy == .initial)
        #expect(try CampaignConfig.parse(base.replacingOccurrences(of: ", policy: initial", with: ""), source: "c.yaml").sampling.policy == .current)
        for type in ["ppo", "grpo", "rloo"] {
            do {
                _ = try CampaignConfig.parse(base + "\nalgorithm: {type: \(type)}\n", source: "c.yaml")
                Issue.record("\(type) accepted sampling.policy: initial")
            } catch let e as CampaignError {
                #expect(e.description.contains("sampling.policy") && e.description.contains(type) && e.description.contains("line 3"), "\(e)")
            } catch { Issue.record("\(error)") }
        }
        do {
            _ = try CampaignConfig.parse(base.replacingOccurrences(of: "policy: initial", with: "policy: latest"), source: "c.yaml")
            Issue.record("accepted sampling.policy: latest")
        } catch let e as CampaignError {
            #expect(e.description.contains("sampling.policy"), "\(e)")
        } catch { Issue.record("\(error)") }
    }
}
