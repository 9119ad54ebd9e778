// What a campaign checks before its first round and while labelling: prompt ids (never wrapped to
// 32 bits), prompt lengths and answers named by file:line at load, a prompts path that is a
// directory, judge scores that are not finite float32 (the round fails naming the judge and the
// sample; nothing is committed), and a judge found from its config file's directory wherever Rondo
// is started.

import Campaign
import Foundation
import Model
import Testing
import TestSupport

private let starter = repo.appendingPathComponent("policies/starter")

/// Writes a python judge into `dir`; `body` sees `req` (the request) and prints the reply.
func writeJudge(_ dir: URL, _ name: String, _ body: String) throws {
    let text = "import json, os, sys, time\nfor line in sys.stdin:\n    req = json.loads(line)\n"
        + body.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n") + "\n"
    try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
}

/// A command-judge campaign whose judge (`judge.py`, relative) lives in `dir/cfg`.
func judgeCampaign(_ dir: URL, rounds: Int = 1, judge body: String, timeout: Int = 30) throws -> URL {
    let cfg = dir.appendingPathComponent("cfg")
    try FileManager.default.createDirectory(at: cfg, withIntermediateDirectories: true)
    try writeJudge(cfg, "judge.py", body)
    let extra = "labeller: {type: command, name: picky, command: [python3, judge.py], timeout_s: \(timeout), max_restarts: 1}"
    let url = try smallConfig(dir, rounds: rounds, extra: extra)
    let moved = cfg.appendingPathComponent("campaign.yaml")
    try FileManager.default.moveItem(at: url, to: moved)
    return moved
}

@Suite struct InputChecksTests {
    func load(_ lines: [String], in dir: URL, needsAnswer: Bool = false, maxNewTokens: Int = 4) throws -> [CampaignPrompt] {
        let url = dir.appendingPathComponent("p.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        let config = try LlamaConfig.load(starter.appendingPathComponent("config.json"))
        return try PromptSet.load(url, key: "prompts.train", tokenizer: nil, config: config, maxNewTokens: maxNewTokens,
                                  needsAnswer: needsAnswer)
    }

    @Test func promptIDsAreNeverWrapped() throws {
        try withTemporaryDirectory { (dir: URL) throws in
            let ok = #"{"prompt_ids": [55, 5, 64], "answer": "1"}"#
            #expect(try load([ok], in: dir).first?.ids == [55, 5, 64])
            for (bad, shown) in [("[55, 4294967301, 64]", "4294967301"), ("[2147483653]", "2147483653"), ("[-1]", "-1"), ("[259]", "259"),
                                 ("[1.5]", "not an integer")] {
                expectError(CampaignError.self, mentioning: ["p.jsonl:2", shown]) { _ = try load([ok, #"{"prompt_ids": \#(bad)}"#], in: dir) }
            }
            expectError(CampaignError.self, mentioning: ["p.jsonl:2", "vocabulary (0..<259)"]) { _ = try load([ok, #"{"prompt_ids": [4294967301]}"#], in: dir) }
        }
    }

    @Test func lengthAndAnswerAreCheckedAtLoad() throws {
        try withTemporaryDirectory { (dir: URL) throws in
            let ok = #"{"prompt_ids": [1, 2, 3], "answer": 7}"#
            let long = #"{"prompt_ids": [\#(Array(repeating: "3", count: 62).joined(separator: ", "))], "answer": "1"}"#
            expectError(CampaignError.self, mentioning: ["p.jsonl:3", "62 tokens", "sampling.max_new_tokens 4", "max_position_embeddings"]) {
                _ = try load([ok, ok, long], in: dir)
            }
            #expect(try load([ok, long], in: dir, maxNewTokens: 3).count == 2)  // 62 + 3 − 1 = 64 positions fit
            expectError(CampaignError.self, mentioning: ["p.jsonl:2", "no \"answer\"", "verifier"]) { _ = try load([ok, #"{"prompt_ids": [1]}"#], in: dir, needsAnswer: true) }
            #expect(try load([ok, #"{"prompt_ids": [1]}"#], in: dir).map(\.answer) == ["7", nil])
            expectError(CampaignError.self, mentioning: ["p.jsonl:1", "\"answer\""]) { _ = try load([#"{"prompt_ids": [1], "answer": [7]}"#], in: dir) }
            expectError(CampaignError.self, mentioning: ["p.jsonl:1", "empty"]) { _ = try load([#"{"prompt_ids": []}"#], in: dir) }
        }
    }

    @Test func campaignRefusesAMissingAnswerBeforeRoundZero() throws {
        try withTemporaryDirectory { dir in
            let prompts = dir.appendingPathComponent("train.jsonl")
            try "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n{\"prompt\": \"2+2=\"}\n".write(to: prompts, atomically: true, encoding: .utf8)
            let text = try String(contentsOf: try smallConfig(dir, rounds: 1), encoding: .utf8)
                .replacingOccurrences(of: repo.appendingPathComponent("data/arithmetic/prompts.jsonl").path, with: prompts.path)
            let config = dir.appendingPathComponent("answers.yaml")
            try text.write(to: config, atomically: true, encoding: .utf8)
            let store = try Campaign.create(config: config, dir: dir.appendingPathComponent("run"), rounds: nil)
            expectError(CampaignError.self, mentioning: ["train.jsonl:2", "answer"]) { _ = try Campaign(store: store) }
            #expect(try committed(store.root).isEmpty)
        }
    }

    @Test func promptsPathThatIsADirectory() throws {
        try withTemporaryDirectory { dir in
            let config = try LlamaConfig.load(starter.appendingPathComponent("config.json"))
            expectError(CampaignError.self, mentioning: [dir.path, "is a directory", "prompts.eval"]) {
                _ = try PromptSet.load(dir, key: "prompts.eval", tokenizer: nil, config: config, maxNewTokens: 4, needsAnswer: false)
            }
            expectError(CampaignError.self, mentioning: ["no such prompt file", "prompts.train"]) {
                _ = try PromptSet.load(dir.appendingPathComponent("none.jsonl"), key: "prompts.train", tokenizer: nil, config: config,
                                       maxNewTokens: 4, needsAnswer: false)
            }
        }
    }

    @Test func scoresOutsideFloat32FailTheRoundNamingJudgeAndSample() throws {
        try withTemporaryDirectory { dir in
            // Round 0's held-out requests (one response each) get sane scores; a round's requests (4
            // responses each) get 1e300 for their third response.
            let config = try judgeCampaign(dir, judge: """
                n = len(req["responses"])
                print(json.dumps({"scores": [1e300 if (n > 1 and i == 2) else float(i) for i in range(n)]}), flush=True)
                """)
            let store = try Campaign.create(config: config, dir: dir.appendingPathComponent("run"), rounds: nil)
            expectError(CampaignError.self, mentioning: ["round 1", "sample 2", "picky", "1e+300", "float32", "not committed"]) {
                _ = try Campaign(store: store).run()
            }
            #expect(try committed(store.root) == [0])
        }
    }

    @Test func judgeRunsInTheConfigDirectoryWhereverRondoStarts() throws {
        try withTemporaryDirectory { dir in
            // The judge opens a file next to it by a relative path; the test runner's directory is not cfg/.
            let config = try judgeCampaign(dir, judge: """
                w = float(open("weight.txt").read())
                print(json.dumps({"scores": [w * len(r) for r in req["responses"]]}), flush=True)
                """)
            try "0.5\n".write(to: config.deletingLastPathComponent().appendingPathComponent("weight.txt"), atomically: true, encoding: .utf8)
            #expect(FileManager.default.currentDirectoryPath != config.deletingLastPathComponent().path)
            let store = try Campaign.create(config: config, dir: dir.appendingPathComponent("run"), rounds: nil)
            let resolved = try String(contentsOf: store.configURL, encoding: .utf8)
            #expect(resolved.contains("working_directory: \(config.deletingLastPathComponent().path)"), "\(resolved)")
            #expect(try Campaign(store: store).run() == .finished(rounds: 1))
            #expect(try committed(store.root) == [0, 1])
        }
    }
}
