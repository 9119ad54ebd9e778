// The campaign end to end through the real `rondo` binary: a 3-round campaign, status, inspect,
// replay of every round (bit for bit) and a counterfactual replay, byte-identical reruns, and a
// crash test that kills the daemon with SIGKILL at random points and resumes until it finishes.

import Campaign
import Foundation
import Model
import Testing
import TestSupport

let repo = repositoryRoot

/// A small campaign on the starter policy: 12 prompts × 4 samples per round.
func smallConfig(_ dir: URL, rounds: Int = 3, extra: String = "",
                 algorithm: String = "{beta: 0.1, rpo_alpha: 1.0, epochs: 1, batch_size: 8, learning_rate: 3.0e-4}") throws -> URL {
    try demoCampaignConfig(dir, rounds: rounds, perRound: 12, evalLimit: 16, threads: 2, extra: extra, algorithm: algorithm)
}

/// SHA-256 of every file under each committed round, by relative path.
func snapshot(_ campaign: URL) throws -> [String: String] {
    var out: [String: String] = [:]
    let rounds = campaign.appendingPathComponent("rounds")
    guard let e = FileManager.default.enumerator(at: rounds, includingPropertiesForKeys: nil) else { return [:] }
    for case let u as URL in e where !u.hasDirectoryPath {
        let rel = String(u.path.dropFirst(rounds.path.count + 1))
        if rel.hasPrefix(".") { continue }
        out[rel] = try sha256(of: u)
    }
    return out
}

func committed(_ campaign: URL) throws -> [Int] { try CampaignStore(root: campaign).committedRounds() }

/// Runs `config` uninterrupted, then again killing the daemon with SIGKILL at random moments and
/// resuming, `kills` times: after every kill each committed round is unchanged and complete (`files`),
/// kills land in several phases, and the finished campaign equals the uninterrupted one. Returns
/// the kills by phase.
@discardableResult
func killAndResume(config: URL, rounds: Int, kills target: Int, in dir: URL, files: [String]) throws -> [String: Int] {
    let clean = dir.appendingPathComponent("clean")
    let began = Date()
    #expect(try runRondo(["start", config.path, "--dir", clean.path]).status == 0)
    let perRound = Date().timeIntervalSince(began) / Double(rounds + 1)
    let reference = try snapshot(clean)
    let launched = Date()
    _ = try runRondo(["status", clean.path])
    let startup = Date().timeIntervalSince(launched)
    // Each attempt aims at one phase, in turn: it watches the new daemon's status.json and kills it a
    // few milliseconds after that phase begins (or a start-up plus a round's time after launch if the phase never comes:
    // `values` (PPO's) or `advantages` (GRPO's) in another campaign, or a phase too short to see). Aiming at phases rather than at
    // times keeps the kills spread over every phase however loaded the machine is and however long
    // each phase takes. Every fourth attempt first lets a round commit, so the campaign advances.
    let aims = ["sample", "rm_refresh", "label", "reference", "values", "advantages", "update", "eval", "buffer", "commit"]
    let run = dir.appendingPathComponent("crashy")
    var g = SystemRandomNumberGenerator()
    var kills = 0, attempts = 0
    var seen: [String: String] = [:]
    var phases: [String: Int] = [:]
    /// The phase the daemon `pid` last wrote to status.json (nil before it wrote one).
    func phase(of pid: Int32) -> String? {
        guard let s = try? JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: run.appendingPathComponent("status.json"))),
              s["pid"]?.int == Int(pid) else { return nil }
        return s["phase"]?.string
    }
    while kills < target && attempts < 80 {
        attempts += 1
        let before = try committed(run).count
        let p = Process()
        p.executableURL = rondoExecutable
        // Until `start` has written config.yaml (a kill can land before), starting again is what a user does.
        let created = FileManager.default.fileExists(atPath: run.appendingPathComponent("config.yaml").path)
        p.arguments = created ? ["resume", run.path] : ["start", config.path, "--dir", run.path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let aim = aims[attempts % aims.count], advance = attempts % 4 == 0
        let deadline = Date().addingTimeInterval(2 * startup + perRound)
        var waitingForCommit = advance
        while p.isRunning && Date() < deadline {
            if waitingForCommit {
                if try committed(run).count > before { waitingForCommit = false }
            } else if phase(of: p.processIdentifier) == aim {
                break
            }
            usleep(2_000)
        }
        usleep(UInt32.random(in: 0...20_000, using: &g))
        if p.isRunning {
            let at = phase(of: p.processIdentifier)
            kill(p.processIdentifier, SIGKILL)
            kills += 1
            phases[at ?? "startup", default: 0] += 1
        }
        p.waitUntilExit()
        // Every committed round is intact and unchanged; nothing partial is visible.
        let now = try snapshot(run)
        for (path, sha) in seen { #expect(now[path] == sha, "after kill \(kills): \(path) changed or vanished") }
        for r in try committed(run) {
            let rd = run.appendingPathComponent("rounds/\(CampaignStore.roundName(r))")
            for f in files {
                #expect(FileManager.default.fileExists(atPath: rd.appendingPathComponent(f).path), "round \(r) lacks \(f)")
            }
        }
        seen = now
        if try committed(run).last == rounds { break }
    }
    print("kill -9: \(kills) kills by phase \(phases.sorted { $0.key < $1.key })")
    #expect(kills >= target * 5 / 6, "only \(kills) kills landed before the campaign finished; phases \(phases)")
    #expect(phases.keys.filter { aims.contains($0) }.count >= 3,
            "kills should land in several phases: \(phases)")
    // Finish, then the result equals the uninterrupted run.
    if try committed(run).last != rounds {
        let last = try runRondo(["resume", run.path])
        #expect(last.status == 0, "final resume: \(last.stderr)")
    }
    #expect(try committed(run) == Array(0...rounds))
    let final = try snapshot(run)
    for (path, sha) in reference where !path.hasSuffix("metrics.json") && !path.hasSuffix(".manifest.json") {
        #expect(final[path] == sha, "\(path) differs from the uninterrupted run")
    }
    return phases
}

@Suite(.serialized) struct CampaignRunTests {
    @Test func threeRoundsStatusInspectReplay() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", try smallConfig(dir).path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            #expect(try committed(run) == [0, 1, 2, 3])
            // metrics.jsonl: one object per round, round 0 included, with the documented keys.
            let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 4)
            let last = try JSONDecoder().decode(JSONValue.self, from: Data(lines[3].utf8))
            for key in ["round", "eval/accuracy", "eval/reward_mean", "eval/kl_to_reference", "eval/length_mean", "eval/distinct_2",
                        "loss", "rewards/accuracies", "time/sample_s", "time/label_s", "time/update_s", "time/eval_s", "time/commit_s"] {
                #expect(last[key] != nil, "metrics lack \(key)")
            }
            let status = try runRondo(["status", run.path, "--json"])
            let sj = try JSONDecoder().decode(JSONValue.self, from: Data(status.stdout.utf8))
            #expect(sj["committed_rounds"]?.int == 4)
            #expect(try runRondo(["inspect", run.path, "--round", "2", "--json"]).status == 0)

            for r in 1...3 {
                let replay = try runRondo(["replay", run.path, "--round", "\(r)"])
                #expect(replay.status == 0 && replay.stdout.contains("identical"), "round \(r): \(replay.stdout) \(replay.stderr)")
            }
            let over = dir.appendingPathComponent("beta.yaml")
            try "algorithm:\n  beta: 0.5\n".write(to: over, atomically: true, encoding: .utf8)
            let cf = dir.appendingPathComponent("counterfactual")
            let c = try runRondo(["replay", run.path, "--round", "2", "--config", over.path, "--out", cf.path])
            #expect(c.status == 0 && c.stdout.contains("DIFFERENT"), "\(c.stdout) \(c.stderr)")
            #expect(FileManager.default.fileExists(atPath: cf.appendingPathComponent("metrics.json").path))
            #expect(try sha256(of: cf.appendingPathComponent("policy/model.safetensors"))
                    != sha256(of: run.appendingPathComponent("rounds/000002/policy/model.safetensors")))

            // resume --from-round 1: rounds 2 and 3 move to archive/ (kept) and are re-run identically.
            let before = try snapshot(run)
            let resumed = try runRondo(["resume", run.path, "--from-round", "1"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try committed(run) == [0, 1, 2, 3])
            let archived = try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("archive").path)
            #expect(archived.count == 1)
            let kept = try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("archive/\(archived[0])").path)
            #expect(kept.sorted() == ["000002", "000003"])
            let after = try snapshot(run)
            for (path, sha) in before where !path.hasSuffix("metrics.json") && !path.hasSuffix(".manifest.json") {
                #expect(after[path] == sha, "\(path) differs after resume --from-round")
            }
        }
    }

    @Test func sameConfigAndSeedGiveIdenticalBytes() throws {
        try withTemporaryDirectory { dir in
            let config = try smallConfig(dir, rounds: 2)
            let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
            #expect(try runRondo(["start", config.path, "--dir", a.path]).status == 0)
            #expect(try runRondo(["start", config.path, "--dir", b.path]).status == 0)
            let sa = try snapshot(a), sb = try snapshot(b)
            #expect(!sa.isEmpty)
            // Every buffer and checkpoint byte-identical; metrics differ only in timings.
            for (path, sha) in sa where !path.hasSuffix("metrics.json") && !path.hasSuffix(".manifest.json") {
                #expect(sb[path] == sha, "\(path) differs")
            }
        }
    }

    @Test func kill9AtRandomPointsThenResume() throws {
        try withTemporaryDirectory { dir in
            try killAndResume(config: try smallConfig(dir, rounds: 14), rounds: 14, kills: 24, in: dir,
                              files: ["metrics.json", "round_state.json", "policy/model.safetensors", "optimizer.safetensors"])
        }
    }

    @Test func secondDaemonIsRefusedAndBadConfigNamesKey() throws {
        try withTemporaryDirectory { dir in
            let bad = dir.appendingPathComponent("bad.yaml")
            try "policy: x\nprompts: {train: a, eval: b}\nsampling: {n: 4, temprature: 1}\n".write(to: bad, atomically: true, encoding: .utf8)
            let r = try runRondo(["start", bad.path, "--dir", dir.appendingPathComponent("b").path])
            #expect(r.status != 0 && r.stderr.contains("sampling.temprature") && r.stderr.contains("line 3"), "\(r.stderr)")

            let run = dir.appendingPathComponent("run")
            let config = try smallConfig(dir, rounds: 40)
            let p = Process()
            p.executableURL = rondoExecutable
            p.arguments = ["start", config.path, "--dir", run.path]
            p.standardError = FileHandle.nullDevice
            try p.run()
            defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) }; p.waitUntilExit() }
            // Wait for the lock to be taken (round 0 committed), then try a second daemon.
            for _ in 0..<200 where (try? committed(run).isEmpty) ?? true { usleep(50_000) }
            let second = try runRondo(["resume", run.path])
            #expect(second.status != 0 && second.stderr.contains("pid \(p.processIdentifier)"), "\(second.stderr)")
            // SIGTERM: stops at the next safe point, exits 0, campaign consistent.
            kill(p.processIdentifier, SIGTERM)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            let rounds = try committed(run)
            #expect(rounds == Array(0...(rounds.last ?? 0)))
        }
    }
}
