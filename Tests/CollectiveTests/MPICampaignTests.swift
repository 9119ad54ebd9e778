// Campaigns on 2 MPI ranks (the MPI build only): the same bits run after run, replay on 2 ranks and
// on one process emulating them, a SIGKILLed rank that leaves nothing half-committed, and PPO.

#if MPI
import Foundation
import RondoSupport
import TestSupport
import Testing

/// The demo's task on the starter policy, small: 8 prompts × 4 samples per round, one thread per rank.
func tinyDemo(_ dir: URL, rounds: Int = 3, algorithm: String = "{beta: 0.1, rpo_alpha: 1.0, epochs: 1, batch_size: 8, learning_rate: 3.0e-4}") throws -> URL {
    try demoCampaignConfig(dir, rounds: rounds, perRound: 8, evalLimit: 8, threads: 1, algorithm: algorithm)
}

/// SHA-256 of every committed round file but the metrics (timings) and manifests, by relative path.
func roundFiles(_ campaign: URL) throws -> [String: String] {
    let rounds = campaign.appendingPathComponent("rounds")
    var out: [String: String] = [:]
    guard let e = FileManager.default.enumerator(at: rounds, includingPropertiesForKeys: nil) else { return [:] }
    for case let u as URL in e where !u.hasDirectoryPath {
        let rel = String(u.path.dropFirst(rounds.path.count + 1))
        if rel.hasPrefix(".") || rel.hasSuffix("metrics.json") || rel.hasSuffix(".manifest.json") { continue }
        out[rel] = try sha256(of: u)
    }
    return out
}

func committedRounds(_ campaign: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: campaign.appendingPathComponent("rounds").path)) ?? [])
        .filter { !$0.hasPrefix(".") }.sorted()
}

/// `rondo` arguments run by mpirun on `ranks` ranks, one thread each.
func mpiRondo(_ ranks: Int, _ args: [String]) throws -> ProcessResult { try mpirun(ranks, args + ["--threads", "1"]) }

@Suite(.serialized) struct MPICampaignTests {
    /// Acceptance 1: the same bits twice; every round replays identically on 2 ranks and on one process.
    @Test func twoRankDemoIsReproducibleAndReplays() throws {
        try withTemporaryDirectory { dir in
            let config = try tinyDemo(dir)
            let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
            let ra = try mpiRondo(2, ["start", config.path, "--dir", a.path])
            #expect(ra.status == 0, "\(ra.stderr)")
            let rb = try mpiRondo(2, ["start", config.path, "--dir", b.path])
            #expect(rb.status == 0, "\(rb.stderr)")
            let fa = try roundFiles(a), fb = try roundFiles(b)
            #expect(fa.keys.contains { $0.hasSuffix("000003/policy/model.safetensors") })
            #expect(fa == fb)
            // Round 1 starts from the same policy on one process: its buffer is byte-identical (the
            // samples do not depend on the rank that drew them); its update is not (the sum order differs).
            let one = dir.appendingPathComponent("one")
            #expect(try runRondo(["start", config.path, "--dir", one.path, "--threads", "1"]).status == 0)
            let fo = try roundFiles(one)
            #expect(fo["000001/rollouts.jsonl.zst"] != nil && fo["000001/rollouts.jsonl.zst"] == fa["000001/rollouts.jsonl.zst"])
            #expect(fo["000001/policy/model.safetensors"] != fa["000001/policy/model.safetensors"])
            let metrics = try String(contentsOf: a.appendingPathComponent("rounds/000001/metrics.json"), encoding: .utf8)
            #expect(metrics.contains("\"dist/ranks\": 2") && metrics.contains("time/allreduce_s") && metrics.contains("dist/bytes_per_step"))
            let status = try runRondo(["status", a.path])
            #expect(status.stdout.contains("ranks"))
            for r in 1...3 {
                let onRanks = try mpiRondo(2, ["replay", a.path, "--round", String(r)])
                #expect(onRanks.status == 0 && onRanks.stdout.contains("identical"), "round \(r) on 2 ranks: \(onRanks.stdout)\(onRanks.stderr)")
                let emulated = try runRondo(["replay", a.path, "--round", String(r), "--threads", "1"])
                #expect(emulated.status == 0 && emulated.stdout.contains("identical") && emulated.stdout.contains("emulated"),
                        "round \(r) on one process: \(emulated.stdout)\(emulated.stderr)")
                // The sum order matters: replaying as one rank gives other bits.
                if r == 1 {
                    let asOne = try runRondo(["replay", a.path, "--round", "1", "--ranks", "1", "--threads", "1"])
                    #expect(asOne.status != 0 && asOne.stdout.contains("DIFFERENT"), "\(asOne.stdout)")
                }
            }
        }
    }

    /// Acceptance 2: SIGKILL of rank 1 while round 2 runs: round 2 is not committed; resume on 2
    /// ranks gives the bits of an uninterrupted 2-rank run.
    @Test func killedRankCommitsNothingAndResumeGivesTheSameBits() throws {
        try withTemporaryDirectory { dir in
            let config = try tinyDemo(dir)
            let clean = dir.appendingPathComponent("clean"), crashy = dir.appendingPathComponent("crashy")
            #expect(try mpiRondo(2, ["start", config.path, "--dir", clean.path]).status == 0)
            let tag = UUID().uuidString
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "RONDO_KILL_TAG",
                           rondoExecutable.path, "start", config.path, "--dir", crashy.path, "--threads", "1"]
            p.environment = ProcessInfo.processInfo.environment.merging(["RONDO_KILL_TAG": tag]) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Round 2 has begun (and cannot commit before rank 1 reaches the commit barrier): kill rank 1.
            let deadline = Date().addingTimeInterval(600)
            var phase: String?
            while Date() < deadline, p.isRunning {
                if let s = try? JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: crashy.appendingPathComponent("status.json"))),
                   s["round"]?.int == 2, let ph = s["phase"]?.string, ["sample", "label", "reference", "pairs"].contains(ph) {
                    phase = ph
                    break
                }
                usleep(2000)
            }
            let victim = try #require(rankPID(tag: tag, rank: 1), "rank 1 not found (phase \(phase ?? "none"))")
            #expect(kill(victim, SIGKILL) == 0)
            p.waitUntilExit()
            #expect(phase != nil)
            #expect(p.terminationStatus != 0)
            #expect(committedRounds(crashy) == ["000000", "000001"])
            let resumed = try mpiRondo(2, ["resume", crashy.path])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let a = try roundFiles(clean), b = try roundFiles(crashy)
            #expect(!a.isEmpty && a == b)
        }
    }

    /// Acceptance 3: the PPO demo runs on 2 ranks and its rounds replay on one process.
    @Test func ppoOnTwoRanks() throws {
        try withTemporaryDirectory { dir in
            let config = try tinyDemo(dir, rounds: 2, algorithm: "{type: ppo, epochs: 2, batch_size: 16, learning_rate: 1.0e-4, kl_target: 0.5}")
            let run = dir.appendingPathComponent("ppo")
            let r = try mpiRondo(2, ["start", config.path, "--dir", run.path])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(committedRounds(run) == ["000000", "000001", "000002"])
            for round in ["1", "2"] {
                let replay = try runRondo(["replay", run.path, "--round", round, "--threads", "1"])
                #expect(replay.status == 0 && replay.stdout.contains("identical"), "\(replay.stdout)\(replay.stderr)")
            }
        }
    }
}

/// The pid of rank `rank` of the mpirun job whose environment holds RONDO_KILL_TAG=`tag`.
func rankPID(tag: String, rank: Int) -> pid_t? {
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = pid_t(name), let env = FileManager.default.contents(atPath: "/proc/\(name)/environ") else { continue }
        let vars = env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        if vars.contains("RONDO_KILL_TAG=\(tag)") && vars.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
    }
    return nil
}
#endif
