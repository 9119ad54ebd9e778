// `rondo inspect` end to end: summary, JSON, filter, export, diff, corruption and salvage.

import Foundation
import Model
import Rollouts
import Testing
import TestSupport

@Suite struct InspectCLITests {
    /// A buffer of 3 prompts × 4 samples; the score is the response length (so length bias is 1).
    func makeBuffer(_ dir: URL, name: String = "rollouts", bias: Int = 0) throws -> URL {
        let url = dir.appendingPathComponent("\(name).jsonl.zst")
        let w = try BufferWriter(url: url, header: BufferHeader(round: 1, policySHA256: String(repeating: "c", count: 64)))
        for i in 0..<12 {
            let n = 2 + i % 4 + bias
            try w.append(SampleRecord(id: i, promptIndex: i / 4, sampleIndex: i % 4, prompt: "what is \(i)?",
                                      promptIDs: [0, 5], responseIDs: (0..<n).map { Int32($0 + i) }, response: "answer \(i)",
                                      logprobs: (0..<n).map { _ in -0.5 }, label: Label(labeller: "verifier", score: Float(n) - 3),
                                      finishReason: i == 11 ? "length" : "eos", seed: SeedStream(seed: 7, stream: UInt64(i))))
        }
        for p in 0..<3 {
            try w.append(PairRecord(promptIndex: p, chosen: p * 4 + 3, rejected: p * 4, margin: 3, how: "best_vs_worst"))
        }
        try w.finish()
        return url
    }

    @Test func summaryJSONFilterExportDiff() throws {
        try withTemporaryDirectory { dir in
            let url = try makeBuffer(dir)
            let text = try runRondo(["inspect", url.path])
            #expect(text.status == 0, "\(text.stderr)")
            for s in ["records  12", "prompts 3", "pairs 3", "length bias", "distinct-2", "top 3 by score", "#3 "] {
                #expect(text.stdout.contains(s), "missing '\(s)' in:\n\(text.stdout)")
            }
            let j = try runRondo(["inspect", url.path, "--json"])
            let o = try JSONDecoder().decode(JSONValue.self, from: Data(j.stdout.utf8))
            #expect(o["records"]?.int == 12 && o["pairs"]?.int == 3 && o["round"]?.int == 1)
            #expect(abs((o["length_score_corr"]?.double ?? 0) - 1) < 1e-9)
            #expect(o["pair_length_gap"]?.double == 3)
            #expect(o["finish_length"]?.int == 1)

            let f = try runRondo(["inspect", url.path, "--json", "--where", "score >= 1"])
            let fo = try JSONDecoder().decode(JSONValue.self, from: Data(f.stdout.utf8))
            #expect(fo["records"]?.int == 6)  // lengths 4 and 5 → scores 1 and 2

            let e = try runRondo(["inspect", url.path, "--export", "jsonl", "--where", "finish_reason == length"])
            let lines = e.stdout.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("\"id\":11"))

            let other = try makeBuffer(dir, name: "longer", bias: 2)
            let d = try runRondo(["inspect", "--diff", other.path, url.path, "--json"])
            #expect(d.status == 0, "\(d.stderr)")
            let dj = try JSONDecoder().decode(JSONValue.self, from: Data(d.stdout.utf8))
            #expect(dj["delta"]?["length_mean"]?.double == 2)
            let dt = try runRondo(["inspect", "--diff", other.path, url.path])
            #expect(dt.stdout.contains("length_mean") && dt.stdout.contains("B − A"))
        }
    }

    @Test func roundAndCampaignDirectories() throws {
        try withTemporaryDirectory { dir in
            // makeBuffer's header says round 1: a round directory must hold its own round's buffer.
            let round = dir.appendingPathComponent("rounds/000001")
            try FileManager.default.createDirectory(at: round, withIntermediateDirectories: true)
            _ = try makeBuffer(round)
            #expect(try runRondo(["inspect", round.path, "--json"]).status == 0)
            #expect(try runRondo(["inspect", dir.path, "--round", "1", "--json"]).status == 0)
            let missing = try runRondo(["inspect", dir.path, "--round", "5"])
            #expect(missing.status != 0 && missing.stderr.contains("round 5"))
        }
    }

    @Test func corruptionExitsNonZeroAndSalvageKeepsPrefix() throws {
        try withTemporaryDirectory { dir in
            let url = try makeBuffer(dir)
            var data = try Data(contentsOf: url)
            data = data.prefix(data.count - 9)
            try data.write(to: url)
            let r = try runRondo(["inspect", url.path])
            #expect(r.status != 0)
            #expect(r.stderr.contains(url.path), "\(r.stderr)")
            let s = try runRondo(["inspect", url.path, "--salvage", "--json"])
            #expect(s.status == 0 && s.stderr.contains("salvage: kept"), "\(s.stderr)")
        }
    }

    /// `rondo generate --output x.jsonl.zst` writes a rollout buffer that `zstdcat | jq` reads completely.
    @Test func generateWritesABufferThatZstdcatAndJqRead() throws {
        try withTemporaryDirectory { dir in
            let prompts = dir.appendingPathComponent("prompts.jsonl")
            try "{\"prompt\": \"<|bos|>hello\"}\n{\"prompt_ids\": [0, 19, 20]}\n{\"prompt\": \"<|bos|>12+35=\"}\n"
                .write(to: prompts, atomically: true, encoding: .utf8)
            let out = dir.appendingPathComponent("samples.jsonl.zst")
            let g = try runRondo(["generate", "--model", Fixtures.policy.path, "--prompts", prompts.path, "--n", "3",
                                  "--max-new-tokens", "8", "--seed", "5", "--output", out.path])
            #expect(g.status == 0, "\(g.stderr)")
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("samples.manifest.json").path))
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "zstdcat '\(out.path)' | jq -c 'select(.kind == \"sample\") | [.id, .prompt_index, .sample_index, (.response_ids | length), (.logprobs | length), .finish_reason]'"]
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            let lines = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            #expect(lines.count == 9)
            for (i, line) in lines.enumerated() {
                let v = try JSONDecoder().decode([JSONValue].self, from: Data(line.utf8))
                #expect(v[0].int == i && v[1].int == i / 3 && v[2].int == i % 3)
                #expect(v[3].int == v[4].int && (v[3].int ?? 0) >= 1)
            }
            let inspect = try runRondo(["inspect", out.path, "--json"])
            #expect(inspect.status == 0, "\(inspect.stderr)")
            #expect((try JSONDecoder().decode(JSONValue.self, from: Data(inspect.stdout.utf8)))["records"]?.int == 9)
        }
    }
}
