// Issue 15, items 1, 9, 11, 12, 13: pinned inputs, `status` from the lock, a failed `start` that
// the corrected `start` can redo, a round's buffer checked against its header, and `--threads` /
// `resume --rounds N` on the campaign commands. Campaigns are the small one of CampaignRunTests.

import Campaign
import Foundation
import Model
import Testing
import TestSupport

/// `smallConfig` with the starter policy and the train prompts replaced by copies in `dir`.
func configWithOwnInputs(_ dir: URL, rounds: Int) throws -> (config: URL, policy: URL, prompts: URL) {
    let policy = dir.appendingPathComponent("starter"), prompts = dir.appendingPathComponent("prompts.jsonl")
    try copyDirectory(repo.appendingPathComponent("policies/starter"), to: policy)
    try FileManager.default.copyItem(at: repo.appendingPathComponent("data/arithmetic/prompts.jsonl"), to: prompts)
    let url = try smallConfig(dir, rounds: rounds)
    let text = try String(contentsOf: url, encoding: .utf8)
        .replacingOccurrences(of: repo.appendingPathComponent("policies/starter").path, with: policy.path)
        .replacingOccurrences(of: repo.appendingPathComponent("data/arithmetic/prompts.jsonl").path, with: prompts.path)
    try text.write(to: url, atomically: true, encoding: .utf8)
    return (url, policy, prompts)
}

func jsonFile(_ url: URL) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)) }

// Part of CampaignRunTests' serialized suite: campaigns run one at a time there, so these do not
// slow the kill -9 test's rounds (it needs rounds short enough to commit between kills).
extension CampaignRunTests {
    @Test func changedInputsAreRefusedUnlessAllowed() throws {
        try withTemporaryDirectory { dir in
            let (config, policy, prompts) = try configWithOwnInputs(dir, rounds: 1)
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", config.path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            let pins = try jsonFile(run.appendingPathComponent("state.json"))["inputs"]?.array ?? []
            let names = pins.compactMap { $0["name"]?.string }
            #expect(names == ["policy", "reference", "tokenizer", "prompts.train", "prompts.eval", "config"], "\(names)")
            let promptsPin = pins.first { $0["name"]?.string == "prompts.train" }
            #expect(promptsPin?["sha256"]?.string == (try sha256(of: prompts)))

            // The starting policy and the reference come from rounds/000000: the original can go.
            try FileManager.default.removeItem(at: policy)
            // A changed prompt file: resume and replay name it and both hashes; nothing runs.
            let old = try sha256(of: prompts)
            let first = try String(contentsOf: prompts, encoding: .utf8).split(separator: "\n")[0]
            let handle = try FileHandle(forWritingTo: prompts)
            try handle.seekToEnd(); try handle.write(contentsOf: Data((first + "\n").utf8)); try handle.close()
            let new = try sha256(of: prompts)
            for args in [["resume", run.path, "--rounds", "2"], ["replay", run.path, "--round", "1"]] {
                let r = try runRondo(args)
                #expect(r.status != 0 && r.stderr.contains(prompts.path) && r.stderr.contains(old) && r.stderr.contains(new)
                        && r.stderr.contains("--allow-changed-inputs"), "\(args[0]): \(r.stderr)")
            }
            #expect(try committed(run) == [0, 1])
            #expect(try jsonFile(run.appendingPathComponent("state.json"))["rounds_target"] == nil)

            // Allowed: round 2 runs and records the change, then the new contents are pinned.
            let allowed = try runRondo(["resume", run.path, "--rounds", "2", "--allow-changed-inputs"])
            #expect(allowed.status == 0, "\(allowed.stderr)")
            #expect(try committed(run) == [0, 1, 2])
            let changed = try jsonFile(run.appendingPathComponent("rounds/000002/metrics.json"))["inputs/changed"]?.array ?? []
            #expect(changed.count == 1 && changed[0].string?.contains(prompts.path) == true, "\(changed)")
            #expect(try runRondo(["replay", run.path, "--round", "2"]).status == 0)

            // Editing DIR/config.yaml is a changed input too.
            let yaml = run.appendingPathComponent("config.yaml")
            let before = try sha256(of: yaml)
            try (String(contentsOf: yaml, encoding: .utf8) + "# edited\n").write(to: yaml, atomically: true, encoding: .utf8)
            for args in [["resume", run.path, "--rounds", "3"], ["replay", run.path, "--round", "2"]] {
                let r = try runRondo(args)
                #expect(r.status != 0 && r.stderr.contains(yaml.path) && r.stderr.contains(before), "\(args[0]): \(r.stderr)")
            }
        }
    }

    @Test func statusDecidesRunningFromTheLockNotThePid() throws {
        try withTemporaryDirectory { dir in
            let store = CampaignStore(root: dir)
            try "policy: x\n".write(to: store.configURL, atomically: true, encoding: .utf8)
            // A status.json naming a live pid (this test's) and a lock file no process holds: a daemon
            // killed with -9 whose pid was reused.
            let status = "{\"round\": 3, \"phase\": \"update\", \"pid\": \(getpid())}"
            try status.write(to: store.statusURL, atomically: true, encoding: .utf8)
            try "\(getpid())\n".write(to: store.lockURL, atomically: true, encoding: .utf8)
            let stopped = try jsonValue(CampaignCommands.status(dir: dir, json: true))
            #expect(stopped["running"] == .bool(false))
            #expect(try CampaignCommands.status(dir: dir, json: false).contains("stopped"))
            // While the lock is held, it is running, with the holder's pid.
            let lock = try CampaignLock(store)
            let running = try jsonValue(CampaignCommands.status(dir: dir, json: true))
            #expect(running["running"] == .bool(true) && running["pid"]?.int == Int(getpid()))
            withExtendedLifetime(lock) {}
        }
    }

    @Test func failedStartCanBeRedoneWithTheCorrectedConfig() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let good = try String(contentsOf: try smallConfig(dir, rounds: 1), encoding: .utf8)
            let real = repo.appendingPathComponent("data/arithmetic/prompts.jsonl").path
            let bad = dir.appendingPathComponent("bad.yaml")
            // A missing prompt file: refused before anything is created.
            let missing = dir.appendingPathComponent("missing.jsonl").path
            try good.replacingOccurrences(of: real, with: missing).write(to: bad, atomically: true, encoding: .utf8)
            let r1 = try runRondo(["start", bad.path, "--dir", run.path])
            #expect(r1.status != 0 && r1.stderr.contains(missing), "\(r1.stderr)")
            #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent("config.yaml").path))
            // A prompt file that fails to parse (found after the directory exists).
            let broken = dir.appendingPathComponent("broken.jsonl")
            try "{\"prompt_ids\": [1, 2], \"answer\": \"3\"}\nnot json\n".write(to: broken, atomically: true, encoding: .utf8)
            try good.replacingOccurrences(of: real, with: broken.path).write(to: bad, atomically: true, encoding: .utf8)
            let r2 = try runRondo(["start", bad.path, "--dir", run.path])
            #expect(r2.status != 0 && r2.stderr.contains("\(broken.path):2"), "\(r2.stderr)")
            // The corrected config starts in the same directory.
            let fixed = try runRondo(["start", dir.appendingPathComponent("campaign.yaml").path, "--dir", run.path])
            #expect(fixed.status == 0, "\(fixed.stderr)")
            #expect(try committed(run) == [0, 1])
            // A directory with committed rounds still refuses a different config.
            let again = try runRondo(["start", bad.path, "--dir", run.path])
            #expect(again.status != 0 && again.stderr.contains("different config"), "\(again.stderr)")
        }
    }

    @Test func threadsAndResumeRounds() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", try smallConfig(dir, rounds: 1).path, "--dir", run.path, "--threads", "1"])
            #expect(start.status == 0, "\(start.stderr)")
            // Extend the finished campaign: recorded in state.json, config.yaml unchanged.
            let yaml = try sha256(of: run.appendingPathComponent("config.yaml"))
            let more = try runRondo(["resume", run.path, "--rounds", "2", "--threads", "1"])
            #expect(more.status == 0, "\(more.stderr)")
            #expect(try committed(run) == [0, 1, 2])
            #expect(try jsonFile(run.appendingPathComponent("state.json"))["rounds_target"]?.int == 2)
            #expect(try sha256(of: run.appendingPathComponent("config.yaml")) == yaml)
            #expect(try runRondo(["resume", run.path]).status == 0)
            #expect(try committed(run) == [0, 1, 2])
            let back = try runRondo(["resume", run.path, "--rounds", "1"])
            #expect(back.status != 0 && back.stderr.contains("--from-round"), "\(back.stderr)")
            let replay = try runRondo(["replay", run.path, "--round", "2", "--threads", "1"])
            #expect(replay.status == 0 && replay.stdout.contains("identical"), "\(replay.stdout) \(replay.stderr)")
            #expect(try runRondo(["replay", run.path, "--round", "2", "--threads", "0"]).status != 0)
            // Without --threads, replay takes the round's own count (its metrics' `threads`), not the
            // config's 2: a round's bits depend on it with some BLAS kernels.
            #expect(try jsonFile(run.appendingPathComponent("rounds/000002/metrics.json"))["threads"]?.int == 1)
            let recorded = try runRondo(["replay", run.path, "--round", "2"])
            #expect(recorded.status == 0 && recorded.stdout.contains("identical"), "\(recorded.stdout) \(recorded.stderr)")
        }
    }

    @Test func bufferCopiedFromAnotherRoundIsRefused() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", try smallConfig(dir, rounds: 2).path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            #expect(try runRondo(["inspect", run.path, "--round", "2"]).status == 0)
            // Round 1's buffer copied into round 2: inspect and replay refuse it, naming both rounds.
            for f in ["rollouts.jsonl.zst", "rollouts.manifest.json"] {
                let target = run.appendingPathComponent("rounds/000002/\(f)")
                try FileManager.default.removeItem(at: target)
                try FileManager.default.copyItem(at: run.appendingPathComponent("rounds/000001/\(f)"), to: target)
            }
            for args in [["inspect", run.path, "--round", "2"], ["replay", run.path, "--round", "2"]] {
                let r = try runRondo(args)
                #expect(r.status != 0 && r.stderr.contains("says round 1") && r.stderr.contains("round 2's directory"), "\(args[0]): \(r.stderr)")
            }
        }
    }
}

func jsonValue(_ text: String) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }
