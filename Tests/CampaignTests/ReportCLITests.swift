// `rondo report` end to end through the real binary: the daemon's RUN/report.html after each
// committed round, a DPO and a PPO campaign compared on the same axes, and clear errors.

import Campaign
import Foundation
import Model
import Testing
import TestSupport

@Suite(.serialized) struct ReportCLITests {
    @Test func daemonWritesTheReportAndCompareOverlaysDPOAndPPO() throws {
        try withTemporaryDirectory { dir in
            let dpo = dir.appendingPathComponent("dpo"), ppo = dir.appendingPathComponent("ppo")
            let a = try runRondo(["start", try smallConfig(dir, rounds: 2).path, "--dir", dpo.path])
            #expect(a.status == 0, "\(a.stderr)")
            // The daemon's report: written after the last commit, reloading itself, with round 2's samples.
            let daemon = try String(contentsOf: dpo.appendingPathComponent("report.html"), encoding: .utf8)
            #expect(daemon.contains("<meta http-equiv=\"refresh\"") && daemon.contains("Round 2: 48 samples"))
            #expect(daemon.contains("data-key=\"eval/accuracy\"") && daemon.contains("data-key=\"train/pairs\""))
            #expect(!daemon.contains("data-key=\"train/samples\""))

            let ppoDir = dir.appendingPathComponent("ppo-config")
            try FileManager.default.createDirectory(at: ppoDir, withIntermediateDirectories: true)
            let b = try runRondo(["start", try smallConfig(ppoDir, rounds: 1, algorithm: ppoAlgorithm).path, "--dir", ppo.path])
            #expect(b.status == 0, "\(b.stderr)")

            let out = dir.appendingPathComponent("compare.html")
            let c = try runRondo(["report", dpo.path, "--compare", ppo.path, "--out", out.path, "--round", "1", "--samples", "3"])
            #expect(c.status == 0, "\(c.stderr)")
            #expect(c.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == out.path)
            let page = try String(contentsOf: out, encoding: .utf8)
            #expect(page.contains("data-run=\"dpo\" d=\"M") && page.contains("data-run=\"ppo\" d=\"M"))
            #expect(page.contains("data-key=\"train/samples\" data-run=\"ppo\"") && page.contains("data-key=\"objective/kl\""))
            #expect(page.contains("<h2>Samples: dpo</h2>") && page.contains("<h2>Samples: ppo</h2>"))
            #expect(!page.contains("<meta http-equiv=\"refresh\""))
            // --samples 3: three rows in each of the four best/worst tables.
            #expect(page.components(separatedBy: "<td class=\"num\">").count - 1 == 4 * 3 * 2)

            let missing = try runRondo(["report", dpo.path, "--round", "7"])
            #expect(missing.status != 0 && missing.stderr.contains("no committed round 7"), "\(missing.stderr)")
            let notRun = try runRondo(["report", dir.path])
            #expect(notRun.status != 0 && notRun.stderr.contains("not a campaign directory"), "\(notRun.stderr)")
        }
    }
}
