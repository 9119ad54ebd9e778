// Issue 15, item 15: `retention` keeps every round's policy but the full state (optimizer moments)
// only for round 0, the last K rounds and every M-th; status reports what can be replayed and resumed
// from; replay and `resume --from-round` refuse pruned rounds naming the nearest usable one; a pruning
// a kill interrupted is finished by the next start.

import Campaign
import Foundation
import Model
import Testing
import TestSupport

// Part of CampaignRunTests' serialized suite: campaigns run one at a time there, so these do not
// slow the kill -9 test's rounds (it needs rounds short enough to commit between kills).
extension CampaignRunTests {
    @Test func retentionPrunesAndRefusesNamingTheNearestRound() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let config = try smallConfig(dir, rounds: 6, extra: "retention: {full_state_last: 2, full_state_every: 3}")
            let start = try runRondo(["start", config.path, "--dir", run.path])
            #expect(start.status == 0, "\(start.stderr)")
            #expect(try committed(run) == Array(0...6))
            let store = CampaignStore(root: run)
            #expect((0...6).filter(store.hasFullState) == [0, 3, 5, 6])
            for r in 0...6 {
                #expect(FileManager.default.fileExists(atPath: store.roundURL(r).appendingPathComponent("policy/model.safetensors").path))
            }

            // status: full state, replayable (parent has full state), resumable, and disk per round.
            let status = try jsonValue(runRondo(["status", run.path, "--json"]).stdout)
            let rows = status["retention"]?.array ?? []
            #expect(rows.compactMap { $0["replayable"] == .bool(true) ? $0["round"]?.int : nil } == [1, 4, 6])
            #expect(rows.compactMap { $0["resumable"] == .bool(true) ? $0["round"]?.int : nil } == [0, 3, 5, 6])
            let bytes = rows.compactMap { $0["disk_bytes"]?.int }
            #expect(bytes.count == 7 && bytes[3] > bytes[4] && bytes[4] > 0, "\(bytes)")
            #expect((status["disk_bytes"]?.int ?? 0) > bytes.reduce(0, +))
            #expect(try runRondo(["status", run.path]).stdout.contains("full state"))

            // A round whose parent kept its full state replays bit for bit (round 4's own optimizer
            // state is pruned, so its policy is compared); one whose parent was pruned is refused.
            for r in [4, 6] {
                let replay = try runRondo(["replay", run.path, "--round", "\(r)"])
                #expect(replay.status == 0 && replay.stdout.contains("identical"), "round \(r): \(replay.stdout) \(replay.stderr)")
            }
            let refused = try runRondo(["replay", run.path, "--round", "3"])
            #expect(refused.status != 0 && refused.stderr.contains("nearest replayable round is 4"), "\(refused.stderr)")
            let from = try runRondo(["resume", run.path, "--from-round", "4"])
            #expect(from.status != 0 && from.stderr.contains("nearest round that has it is 3"), "\(from.stderr)")
            #expect(try committed(run) == Array(0...6))

            // A kill during pruning leaves some of a pruned round's full state: the next start finishes
            // the pruning, and the campaign continues.
            try FileManager.default.copyItem(at: store.roundURL(3).appendingPathComponent("optimizer.safetensors"),
                                             to: store.roundURL(2).appendingPathComponent("optimizer.safetensors"))
            let resumed = try runRondo(["resume", run.path, "--rounds", "7"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect((0...7).filter(store.hasFullState) == [0, 3, 6, 7])
        }
    }

    @Test func retentionValuesAreChecked() throws {
        let base = "policy: x\nprompts: {train: a, eval: b}\n"
        #expect(throws: CampaignError.self) { try CampaignConfig.parse(base + "retention: {full_state_last: 0}\n", source: "c.yaml") }
        #expect(throws: CampaignError.self) { try CampaignConfig.parse(base + "retention: {full_state_every: 0}\n", source: "c.yaml") }
        #expect(throws: CampaignError.self) { try CampaignConfig.parse(base + "retention: {keep: 3}\n", source: "c.yaml") }
        let c = try CampaignConfig.parse(base + "retention: {full_state_last: 2, full_state_every: 5}\n", source: "c.yaml")
        #expect(c.retention == RetentionSection(fullStateLast: 2, fullStateEvery: 5))
        #expect((0...20).filter { c.retention!.keepsFullState($0, last: 20) } == [0, 5, 10, 15, 19, 20])
    }
}
