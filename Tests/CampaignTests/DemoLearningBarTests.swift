// The learning bar (issue 18): the default campaign, policies/demo.yaml as shipped with only its
// seed set to 1, runs its 10 rounds through the real `rondo` binary and must gain at least 20 points
// of held-out accuracy over round 0 without ever falling more than 5 points below it
// (docs/experiments.md has the study behind the settings: seeds 1, 2 and 3 gain 27.1, 22.2 and 25.5
// points on the machine of the study, lowest −1.2, −2.1, −2.4). Slow by nature: a full campaign.

import Foundation
import Model
import Testing
import TestSupport

@Suite(.serialized) struct DemoLearningBarTests {
    /// demo.yaml with absolute paths (it is written elsewhere) and `seed` replaced.
    func demoConfig(seed: Int, in dir: URL) throws -> URL {
        let policies = repo.appendingPathComponent("policies")
        var text = try String(contentsOf: policies.appendingPathComponent("demo.yaml"), encoding: .utf8)
        let replacements = [("\npolicy: starter\n", "\npolicy: \(policies.appendingPathComponent("starter").path)\n"),
                            (" ../data/", " \(repo.appendingPathComponent("data").path)/")]
        for (old, new) in replacements {
            try #require(text.contains(old), "policies/demo.yaml no longer has '\(old)'; update this test")
            text = text.replacingOccurrences(of: old, with: new)
        }
        let seedLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("seed:") }, "demo.yaml has no seed line")
        text = text.replacingOccurrences(of: String(seedLine), with: "seed: \(seed)")
        let url = dir.appendingPathComponent("demo-seed\(seed).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test
    func demoGainsTwentyPointsOnSeedOne() throws {
        try withTemporaryDirectory { dir in
            let run = dir.appendingPathComponent("run")
            let began = Date()
            let start = try runRondo(["start", try demoConfig(seed: 1, in: dir).path, "--dir", run.path])
            let seconds = Date().timeIntervalSince(began)
            try #require(start.status == 0, "\(start.stderr)")
            let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            let accuracy = try lines.map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8))["eval/accuracy"]?.double ?? .nan }
            try #require(accuracy.count == 11, "rounds 0–10 expected in metrics.jsonl, found \(accuracy.count)")
            let gains = accuracy.map { ($0 - accuracy[0]) * 100 }
            let lowest = gains.min() ?? .nan
            print("demo learning bar, seed 1: accuracy \(accuracy), round 10 − round 0 = \(gains[10]) points, lowest \(lowest), \(Int(seconds)) s")
            // Accuracy is a multiple of 1/1000, so the bar is exact up to rounding; NaN fails both.
            #expect(gains[10] >= 20 - 1e-6, "round 10 gains \(gains[10]) points over round 0 (accuracy \(accuracy)); the bar is 20")
            #expect(gains.allSatisfy { $0 >= -5 - 1e-6 }, "accuracy falls \(-lowest) points below round 0 (accuracy \(accuracy)); at most 5 allowed")
        }
    }
}
