// LoRA campaigns (issue 20): a DPO campaign whose policy is a PEFT adapter on the frozen starter
// policy. Rounds hold the adapter and its optimizer state only, with the base pinned; every round
// replays bit for bit; kill -9 at any phase then resume gives the uninterrupted run's files; the
// adapter a round writes loads in `rondo logprobs --adapter` and scores the next round's samples as
// its sampler did; a changed base is refused. Part of CampaignRunTests' serialized suite.

import Campaign
import Foundation
import Kernels
import Labeling
import Model
import Rollouts
import Testing
import TestSupport
import Training

/// `smallConfig` with `policy: {base: BASE, lora: {…}}` (or `policy_value` given whole).
func loraConfig(_ dir: URL, base: URL? = nil, rounds: Int, policyValue: String? = nil, extra: String = "",
                algorithm: String = "{beta: 0.1, epochs: 1, batch_size: 8, learning_rate: 2.0e-3}") throws -> URL {
    let starter = repo.appendingPathComponent("policies/starter").path
    let url = try smallConfig(dir, rounds: rounds, extra: extra, algorithm: algorithm)
    let policy = policyValue ?? "{base: \((base?.path ?? starter)), lora: {r: 4, alpha: 8, target_modules: all-linear}}"
    let text = try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "policy: \(starter)", with: "policy: \(policy)")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
}

/// The files under a directory, relative, sorted.
func files(under dir: URL) -> [String] {
    let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)
    var out: [String] = []
    while let u = e?.nextObject() as? URL {
        if !u.hasDirectoryPath { out.append(String(u.path.dropFirst(dir.path.count + 1))) }
    }
    return out.sorted()
}

extension CampaignRunTests {
    @Test func loraCampaignHoldsAdaptersReplaysAndScores() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", try loraConfig(dir, rounds: 3).path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            #expect(try committed(run) == [0, 1, 2, 3])
            let base = repo.appendingPathComponent("policies/starter")
            let baseSHA = try sha256(of: base.appendingPathComponent("model.safetensors"))
            let config = try ModelDirectory.load(base).config
            let layout = LoRAAdapter(config: try LoRAConfig(r: 4, alpha: 8, targets: LoRATarget.allCases), model: config).layout
            var adapters: [String] = []
            for r in 0...3 {
                let rd = run.appendingPathComponent("rounds/\(CampaignStore.roundName(r))")
                // The checkpoint is the adapter and its optimizer state: no model weights anywhere.
                #expect(files(under: rd.appendingPathComponent("policy")) == ["adapter_config.json", "adapter_model.safetensors"])
                #expect(!files(under: rd).contains { $0.hasSuffix("model.safetensors") && !$0.hasSuffix("adapter_model.safetensors") })
                let optimizer = try SafetensorsFile(url: rd.appendingPathComponent("optimizer.safetensors"))
                #expect(optimizer.names.allSatisfy { $0.contains(".lora_") }, "\(optimizer.names.prefix(3))")
                let state = try jsonFile(rd.appendingPathComponent("round_state.json"))
                #expect(state["base_sha256"]?.string == baseSHA)
                #expect(state["base"]?.string == base.appendingPathComponent("model.safetensors").path)
                let a = try LoRAAdapter.load(from: rd.appendingPathComponent("policy"), model: config)
                #expect(a.layout.count == layout.count)
                adapters.append(try sha256(of: rd.appendingPathComponent("policy/adapter_model.safetensors")))
            }
            #expect(Set(adapters).count == 4, "every round's update changes the adapter")
            for r in 1...3 {
                let replay = try runRondo(["replay", run.path, "--round", "\(r)"])
                #expect(replay.status == 0 && replay.stdout.contains("identical") && replay.stdout.contains("adapter_model.safetensors"),
                        "round \(r): \(replay.stdout) \(replay.stderr)")
            }

            // Round 3 sampled with round 2's adapter merged and stored the base's (adapter off)
            // log-probs as the reference: `rondo logprobs` with and without --adapter gives both.
            var samples: [SampleRecord] = []
            try BufferReader(url: run.appendingPathComponent("rounds/000003/rollouts.jsonl.zst")).read { item in
                if case .sample(let s) = item { samples.append(s) }
            }
            #expect(samples.count == 48)
            let items = dir.appendingPathComponent("items.jsonl")
            try samples.map { "{\"prompt_ids\": \($0.promptIDs), \"response_ids\": \($0.responseIDs)}" }.joined(separator: "\n")
                .appending("\n").write(to: items, atomically: true, encoding: .utf8)
            func score(_ extra: [String]) throws -> [Float] {
                let r = try runRondo(["logprobs", "--model", base.path, "--input", items.path] + extra)
                #expect(r.status == 0, "\(r.stderr)")
                return try r.stdout.split(separator: "\n").flatMap { line in
                    try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))["logprobs"]!.array!.map { Float($0.double!) }
                }
            }
            let adapted = try score(["--adapter", run.appendingPathComponent("rounds/000002/policy").path])
            let plain = try score([])
            let sampled = samples.flatMap(\.logprobs), reference = samples.flatMap { $0.refLogprobs! }
            #expect(relativeError(adapted, sampled) <= 1e-4, "adapter vs sampler: \(relativeError(adapted, sampled))")
            #expect(relativeError(plain, reference) <= 1e-5, "base vs stored reference: \(relativeError(plain, reference))")
            #expect(relativeError(plain, sampled) > 1e-3, "the trained adapter changes the log-probs")
        }
    }

    @Test func loraCampaignKill9ThenResumeIsBitIdentical() throws {
        try withTemporaryDirectory { dir in
            try killAndResume(config: try loraConfig(dir, rounds: 4), rounds: 4, kills: 9, in: dir,
                              files: ["metrics.json", "round_state.json", "policy/adapter_model.safetensors",
                                      "policy/adapter_config.json", "optimizer.safetensors"])
        }
    }

    /// A LoRA round's AdamW moments are BF16 on disk (half the bytes of F32); round 2 run in the
    /// process that ran round 1 equals round 2 resumed from round 1 on disk, also when round 1's
    /// moments are F32 (as LoRA rounds were written before BF16 moments), and the round after it
    /// replays; `algorithm.optimizer_moments: f32` keeps F32 moments, whose rounds replay too.
    @Test func loraMomentsAreBF16AndContinueAsResumed() throws {
        try withTemporaryDirectory { dir in
            let config = try loraConfig(dir, rounds: 2)
            let whole = dir.appendingPathComponent("whole"), split = dir.appendingPathComponent("split")
            #expect(try runRondo(["start", config.path, "--dir", whole.path]).status == 0)
            let first = try runRondo(["start", config.path, "--dir", split.path, "--rounds", "1"])
            #expect(first.status == 0, "\(first.stderr)")
            func round(_ run: URL, _ r: Int) -> URL { run.appendingPathComponent("rounds/\(CampaignStore.roundName(r))") }
            for r in 0...2 {
                let file = try SafetensorsFile(url: round(whole, r).appendingPathComponent("optimizer.safetensors"))
                #expect(!file.names.isEmpty && file.names.allSatisfy { file.info($0)?.dtype == .bf16 }, "round \(r)")
            }
            // Round 1's moments rewritten as F32 (the same values, exactly): an older round's form.
            let base = try ModelDirectory.load(repo.appendingPathComponent("policies/starter")).config
            let layout = LoRAAdapter(config: try LoRAConfig(r: 4, alpha: 8, targets: LoRATarget.allCases), model: base).layout
            try AdamW.load(from: round(split, 1), layout: layout, config: AdamWConfig()).save(to: round(split, 1))
            #expect(try AdamW.storedMoments(in: round(split, 1)) == .f32)
            let resumed = try runRondo(["resume", split.path, "--rounds", "2"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            for f in ["policy/adapter_model.safetensors", "optimizer.safetensors", "round_state.json"] {
                #expect(try sha256(of: round(whole, 2).appendingPathComponent(f)) == sha256(of: round(split, 2).appendingPathComponent(f)),
                        "round 2 \(f): continued in one process vs resumed from F32 moments")
            }
            // Round 2 replays from round 1's F32 moments. (Round 1 itself is a BF16 round rewritten,
            // not one written before BF16 moments, so its replay — unrounded F32 — would differ.)
            let replay = try runRondo(["replay", split.path, "--round", "2"])
            #expect(replay.status == 0 && replay.stdout.contains("identical"), "round 2: \(replay.stdout) \(replay.stderr)")

            try FileManager.default.createDirectory(at: dir.appendingPathComponent("f32"), withIntermediateDirectories: true)
            let f32Config = try loraConfig(dir.appendingPathComponent("f32"), rounds: 1,
                                           algorithm: "{beta: 0.1, epochs: 1, batch_size: 8, learning_rate: 2.0e-3, optimizer_moments: f32}")
            let f32 = dir.appendingPathComponent("f32run")
            #expect(try runRondo(["start", f32Config.path, "--dir", f32.path]).status == 0)
            let full = try SafetensorsFile(url: round(f32, 1).appendingPathComponent("optimizer.safetensors"))
            #expect(full.names.allSatisfy { full.info($0)?.dtype == .f32 })
            // F32 rounds (as every LoRA round before BF16 moments) replay with their own, unrounded moments.
            let f32Replay = try runRondo(["replay", f32.path, "--round", "1"])
            #expect(f32Replay.status == 0 && f32Replay.stdout.contains("identical"), "\(f32Replay.stdout) \(f32Replay.stderr)")
            let size = { (u: URL) in try FileManager.default.attributesOfItem(atPath: u.appendingPathComponent("optimizer.safetensors").path)[.size] as! Int }
            let (half, single) = (try size(round(whole, 1)), try size(round(f32, 1)))
            #expect(half < single / 2 + 65_536, "BF16 moments \(half) bytes vs F32 \(single)")
        }
    }

    /// `labeller: {type: reward_model, model: BASE, adapter: DIR}`: the buffer's scores are the
    /// adapter labeller's, bit for bit (not the plain reward model's); the adapter is pinned.
    @Test func rewardModelAdapterLabelsACampaign() throws {
        try withTemporaryDirectory { dir in
            let reward = repo.appendingPathComponent("policies/reward")
            let base = try ModelDirectory.load(reward)
            let a = LoRAAdapter(config: try LoRAConfig(r: 4, alpha: 8, targets: [.q, .v, .down]), model: base.config)
            a.initialize(seed: 5)
            for e in a.layout.entries where !e.name.hasSuffix(".lora_A.weight") {
                let v = a.weights.view(e)
                for j in 0..<v.count { v[j] = 0.3 * Philox(seed: 6).normal(UInt64(e.offset + j)) }
            }
            let adapter = dir.appendingPathComponent("rm-adapter")
            try a.save(to: adapter, baseModel: reward.path)
            let run = dir.appendingPathComponent("run")
            let config = try smallConfig(dir, rounds: 1, extra: "labeller: {type: reward_model, model: \(reward.path), adapter: \(adapter.path)}")
            let start = try runRondo(["start", config.path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            var samples: [SampleRecord] = []
            try BufferReader(url: run.appendingPathComponent("rounds/000001/rollouts.jsonl.zst")).read { item in
                if case .sample(let s) = item { samples.append(s) }
            }
            let first = samples.filter { $0.promptIndex == samples[0].promptIndex }
            let request = LabelRequest(prompt: first[0].prompt ?? "", promptIDs: first[0].promptIDs, answer: nil,
                                       responses: first.map { $0.response ?? "" }, responseIDs: first.map(\.responseIDs))
            let mine = try RewardModelLabeller(directory: reward, adapter: adapter, weightsSHA256: "x").score(request)
            let plain = try RewardModelLabeller(directory: reward, weightsSHA256: "x").score(request)
            #expect(first.count == 4 && first.map { $0.label?.score?.bitPattern } == mine.map(\.bitPattern), "\(first.map { $0.label?.score }) vs \(mine)")
            #expect(zip(mine, plain).allSatisfy { $0 != $1 }, "the adapter changes the scores")
            let state = try String(contentsOf: run.appendingPathComponent("state.json"), encoding: .utf8)
            #expect(state.contains("labeller.adapter") && state.contains(adapter.appendingPathComponent("adapter_model.safetensors").path))
        }
    }

    @Test func loraCampaignRefusesAChangedBase() throws {
        try withTemporaryDirectory { dir in
            let base = dir.appendingPathComponent("base")
            try copyDirectory(repo.appendingPathComponent("policies/starter"), to: base)
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", try loraConfig(dir, base: base, rounds: 1).path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            let weights = base.appendingPathComponent("model.safetensors")
            let old = try sha256(of: weights)
            // Another base of the same shape: the adapter would load, so only the pin can tell.
            var data = try Data(contentsOf: weights)
            data[data.count - 1] ^= 0x01
            try data.write(to: weights)
            let new = try sha256(of: weights)
            for args in [["resume", run.path, "--rounds", "2"], ["replay", run.path, "--round", "1"]] {
                let r = try runRondo(args)
                #expect(r.status != 0 && r.stderr.contains(weights.path) && r.stderr.contains(old) && r.stderr.contains(new)
                        && r.stderr.contains("--allow-changed-inputs"), "\(args[0]): \(r.stderr)")
            }
            #expect(try committed(run) == [0, 1])
        }
    }

    /// A LoRA policy is a policy, not an algorithm: GRPO trains the adapter the same way (reference
    /// log-probs from the base with the adapter off, KL term on) and its rounds replay bit for bit.
    @Test func loraGRPOCampaignReplays() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let config = try loraConfig(dir, rounds: 2, algorithm: "{type: grpo, batch_size: 16, learning_rate: 2.0e-3, grpo: {beta: 0.04, num_iterations: 2}}")
            let start = try runRondo(["start", config.path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            #expect(try committed(run) == [0, 1, 2])
            let shas = try (0...2).map { try sha256(of: run.appendingPathComponent("rounds/00000\($0)/policy/adapter_model.safetensors")) }
            #expect(Set(shas).count == 3)
            for r in 1...2 {
                let replay = try runRondo(["replay", run.path, "--round", "\(r)"])
                #expect(replay.status == 0 && replay.stdout.contains("identical"), "round \(r): \(replay.stdout) \(replay.stderr)")
            }
        }
    }

    @Test func loraPolicyKeysParseRoundTripAndRefuseWhatRondoCannotDo() throws {
        let head = "prompts: {train: t.jsonl, eval: e.jsonl}\nsampling: {n: 2}\n"
        let c = try CampaignConfig.parse("policy: {base: /m, lora: {r: 16, alpha: 32, target_modules: [q_proj, v_proj], use_rslora: true}}\n" + head,
                                         source: "c.yaml")
        #expect(c.isLoRA && c.policy == "/m" && c.lora?.r == 16 && c.lora?.alpha == 32 && c.lora?.useRSLoRA == true)
        #expect(try CampaignConfig.parse(try c.yaml(), source: "again") == c)
        let a = try CampaignConfig.parse("policy: {base: /m, adapter: /a}\n" + head, source: "c.yaml")
        #expect(a.isLoRA && a.adapter == "/a" && a.lora == nil)
        #expect(try CampaignConfig.parse(try a.yaml(), source: "again") == a)
        let f32 = try CampaignConfig.parse("policy: {base: /m, adapter: /a}\nalgorithm: {optimizer_moments: f32}\n" + head, source: "c.yaml")
        #expect(f32.algorithm.optimizerMoments == .f32 && a.algorithm.optimizerMoments == nil)
        #expect(try CampaignConfig.parse(try f32.yaml(), source: "again") == f32)
        let rmAdapter = try CampaignConfig.parse("policy: /m\nlabeller: {type: reward_model, model: /r, adapter: /a}\n" + head, source: "c.yaml")
        #expect(rmAdapter.labeller.adapter == "/a")
        #expect(try CampaignConfig.parse(try rmAdapter.yaml(), source: "again") == rmAdapter)
        let plain = try CampaignConfig.parse("policy: /m\n" + head, source: "c.yaml")
        let plainYAML = try plain.yaml()
        #expect(!plain.isLoRA && plainYAML.contains("policy: /m\n"))
        let refused: [(String, String)] = [
            ("policy: {base: /m, lora: {r: 4, lora_dropout: 0.05}}\n", "policy.lora.lora_dropout"),
            ("policy: {base: /m, lora: {r: 4, target_modules: [qproj]}}\n", "policy.lora.target_modules"),
            ("policy: {base: /m, lora: {r: 0}}\n", "policy.lora.r"),
            ("policy: {base: /m, lora: {r: 4, dropout: 0}}\n", "policy.lora.dropout"),
            ("policy: {base: /m, lora: {r: 4}, adapter: /a}\n", "'policy'"),
            ("policy: {base: /m, lora: {r: 4}}\nalgorithm: {type: ppo}\n", "algorithm.type"),
            ("policy: {base: /m, lora: {r: 4}}\nalgorithm: {optimizer_moments: fp8}\n", "optimizer_moments"),
            ("policy: /m\nlabeller: {type: verifier, adapter: /a}\n", "labeller.adapter"),
            ("policy: /m\nlabeller: {type: reward_model, model: /r, adapter: /a, refresh: {gold: {type: verifier}}}\n", "labeller.refresh"),
            ("policy: /m\nlabeller: {type: reward_model, model: /r, adapter: /a}\nalgorithm: {type: ppo}\n", "algorithm.value_model"),
        ]
        for (yaml, key) in refused {
            #expect(throws: CampaignError.self) { try CampaignConfig.parse(yaml + head, source: "c.yaml") }
            do { _ = try CampaignConfig.parse(yaml + head, source: "c.yaml") } catch {
                #expect("\(error)".contains(key), "\(yaml): \(error)")
            }
        }
    }
}
