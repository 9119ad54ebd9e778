// A refresh's gold labeller (`labeller.refresh.gold`) is pinned like the campaign's own labeller:
// a command judge's files and an http judge's prompt template are hashed at `start`, and a changed
// one is refused when the campaign is opened again (resume, replay) unless --allow-changed-inputs.

import Campaign
import Foundation
import Model
import Testing
import TestSupport

@Suite struct GoldPinningTests {
    /// A refresh campaign in `dir/cfg` whose gold labeller is `gold` (paths relative to cfg).
    func goldCampaign(_ dir: URL, gold: String) throws -> URL {
        let cfg = dir.appendingPathComponent("cfg")
        try FileManager.default.createDirectory(at: cfg, withIntermediateDirectories: true)
        let rm = repo.appendingPathComponent("policies/reward").path
        let url = try smallConfig(dir, rounds: 1, extra: "labeller: {type: reward_model, model: \(rm), refresh: {every: 1, gold: \(gold), samples_per_refresh: 8}}")
        let moved = cfg.appendingPathComponent("campaign.yaml")
        try FileManager.default.moveItem(at: url, to: moved)
        return moved
    }

    @Test func goldLabellerFilesArePinnedAndAChangeIsRefused() throws {
        let cases: [(gold: String, file: String, name: String)] = [
            ("{type: command, command: [python3, gold.py]}", "gold.py", "labeller.refresh.gold.command[1]"),
            ("{type: http, url: 'http://127.0.0.1:9/v1/chat/completions', prompt_template: gold.jinja}", "gold.jinja",
             "labeller.refresh.gold.prompt_template"),
        ]
        for c in cases {
            try withTemporaryDirectory { dir in
                let config = try goldCampaign(dir, gold: c.gold)
                let file = config.deletingLastPathComponent().appendingPathComponent(c.file)
                try "print('gold')\n".write(to: file, atomically: true, encoding: .utf8)
                let store = try Campaign.create(config: config, dir: dir.appendingPathComponent("run"), rounds: nil)
                let pins = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: store.stateURL))["inputs"]?.array ?? []
                let pin = pins.first { $0["name"]?.string == c.name }
                let hash = try sha256(of: file)
                #expect(pin?["path"]?.string == file.path && pin?["sha256"]?.string == hash, "\(c.name): \(pins)")
                #expect(pins.contains { $0["name"]?.string == "labeller.model" }, "the reward model's own pin: \(pins)")
                _ = try Campaign(store: store)  // unchanged: opens

                let old = hash
                try "print('another gold')\n".write(to: file, atomically: true, encoding: .utf8)
                let new = try sha256(of: file)
                expectError(CampaignError.self, mentioning: [c.name, file.path, old, new, "--allow-changed-inputs"]) {
                    _ = try Campaign(store: store)
                }
                _ = try Campaign(store: store, options: CampaignRunOptions(allowChangedInputs: true))
            }
        }
    }
}
