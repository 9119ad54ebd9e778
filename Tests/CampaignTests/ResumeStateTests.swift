// What `resume` and `replay` take from the campaign's own record: resume continues with the thread
// count its last committed round ran with (an update's bits depend on it), `resume --from-round`
// rewrites report.html without the archived rounds, and replay writes nothing into the campaign
// (not even the pins of a campaign from before pinning; nor a report into its --out directory:
// that holds one round's counterfactual, not a campaign).

import Campaign
import Foundation
import Model
import Testing
import TestSupport

/// SHA-256 of every file under `dir`, by relative path.
func snapshotAll(_ dir: URL) throws -> [String: String] {
    var out: [String: String] = [:]
    guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { return [:] }
    for case let u as URL in e where !u.hasDirectoryPath {
        out[String(u.standardizedFileURL.path.dropFirst(dir.standardizedFileURL.path.count + 1))] = try sha256(of: u)
    }
    return out
}

extension CampaignRunTests {
    @Test func resumeKeepsTheRecordedThreadCount() throws {
        try withTemporaryDirectory { dir in
            let config = try smallConfig(dir, rounds: 3)  // threads: 2 in the config
            let clean = dir.appendingPathComponent("clean"), run = dir.appendingPathComponent("run")
            let uninterrupted = try runRondo(["start", config.path, "--dir", clean.path, "--threads", "1"])
            #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
            let start = try runRondo(["start", config.path, "--dir", run.path, "--rounds", "2", "--threads", "1"])
            #expect(start.status == 0 && start.stderr.contains("threads: 1 (--threads)"), "\(start.stderr)")
            // Without --threads, round 3 runs with round 2's count, not the config's 2: the same bits.
            let resume = try runRondo(["resume", run.path, "--rounds", "3"])
            #expect(resume.status == 0 && resume.stderr.contains("threads: 1, as round 2 ran"), "\(resume.stderr)")
            #expect(try jsonFile(run.appendingPathComponent("rounds/000003/metrics.json"))["threads"]?.int == 1)
            for f in ["policy/model.safetensors", "optimizer.safetensors"] {
                #expect(try sha256(of: run.appendingPathComponent("rounds/000003/\(f)"))
                        == sha256(of: clean.appendingPathComponent("rounds/000003/\(f)")), "round 3's \(f)")
            }
            // An explicit --threads still wins.
            let explicit = try runRondo(["resume", run.path, "--rounds", "4", "--threads", "2"])
            #expect(explicit.status == 0 && explicit.stderr.contains("threads: 2 (--threads)"), "\(explicit.stderr)")
            #expect(try jsonFile(run.appendingPathComponent("rounds/000004/metrics.json"))["threads"]?.int == 2)
        }
    }

    @Test func fromRoundRewritesTheReportAndReplayWritesNothing() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let start = try runRondo(["start", try smallConfig(dir, rounds: 2).path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            let report = run.appendingPathComponent("report.html")
            #expect(try String(contentsOf: report, encoding: .utf8).contains("<td>0–2</td>"))

            // Replay, with or without --out, leaves every file of the campaign as it was.
            let out = dir.appendingPathComponent("counterfactual")
            func replayChangesNothing() throws {
                let before = try snapshotAll(run)
                for args in [["replay", run.path, "--round", "2"], ["replay", run.path, "--round", "2", "--out", out.path]] {
                    let r = try runRondo(args)
                    #expect(r.status == 0 && r.stdout.contains("identical"), "\(args): \(r.stdout) \(r.stderr)")
                }
                #expect(try snapshotAll(run) == before)
            }
            try replayChangesNothing()
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("metrics.json").path))
            #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("report.html").path))
            // A campaign from before pinning: replay pins nothing either; resume does.
            try CampaignStore(root: run).updateState { $0["inputs"] = nil }
            try replayChangesNothing()

            // Back to round 1 with nothing more to run: the report no longer shows round 2.
            let back = try runRondo(["resume", run.path, "--from-round", "1", "--rounds", "1"])
            #expect(back.status == 0, "\(back.stderr)")
            #expect(try committed(run) == [0, 1])
            #expect(try jsonFile(run.appendingPathComponent("state.json"))["inputs"]?.array?.isEmpty == false)
            let html = try String(contentsOf: report, encoding: .utf8)
            #expect(html.contains("<td>0–1</td>") && !html.contains("<td>0–2</td>") && html.contains("Round 1:"), "\(html.prefix(2000))")
        }
    }
}
