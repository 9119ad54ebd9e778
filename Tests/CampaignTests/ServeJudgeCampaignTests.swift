// A campaign whose judge is `rondo serve` of another model (the oracle's reference, with a small
// chat template) on loopback: the round commits, every sample's exchange is in the buffer, and each
// reply is the served model's greedy answer to the rendered judge prompt — what `rondo generate
// --temperature 0` gives for that prompt as a chat message. The labels are noise (a random model
// judges); this checks the plumbing.

import Campaign
import Foundation
import Model
import Rollouts
import Testing
import TestSupport

@Suite(.serialized) struct ServeJudgeCampaignTests {
    @Test func aCampaignJudgedByRondoServe() throws {
        try withTemporaryDirectory { dir in
            let judgeModel = try chatModel(Fixtures.reference, in: dir)
            let server = try ServedModel(["--model", judgeModel.path, "--batch-size", "8", "--threads", "1"], logIn: dir)
            defer { server.stop() }
            let train = dir.appendingPathComponent("train.jsonl"), eval = dir.appendingPathComponent("eval.jsonl")
            try ["the cat", "a dog", "one two", "red fox", "blue sky", "old tree"].map { "{\"prompt\": \"<|bos|>\($0)\"}\n" }.joined()
                .write(to: train, atomically: true, encoding: .utf8)
            try "{\"prompt\": \"<|bos|>the end\"}\n{\"prompt\": \"<|bos|>a start\"}\n".write(to: eval, atomically: true, encoding: .utf8)
            try "Rate 0-9: {{ prompt }} => {{ response }}".write(to: dir.appendingPathComponent("judge.jinja"), atomically: true, encoding: .utf8)
            let config = dir.appendingPathComponent("campaign.yaml")
            try """
                policy: \(Fixtures.policy.path)
                prompts: {train: train.jsonl, eval: eval.jsonl, per_round: 4}
                sampling: {n: 2, max_new_tokens: 6, batch_size: 8}
                labeller:
                  type: http
                  url: \(server.baseURL)/chat/completions
                  model: \(judgeModel.lastPathComponent)
                  prompt_template: judge.jinja
                  parse: '([0-9])'
                  max_tokens: 8
                  max_unscored: 1.0
                  concurrency: 4
                algorithm: {beta: 0.1, epochs: 1, batch_size: 4, learning_rate: 1.0e-4}
                rounds: 1
                seed: 3
                threads: 1
                """.write(to: config, atomically: true, encoding: .utf8)
            let run = dir.appendingPathComponent("run")
            let r = try runRondo(["start", config.path, "--dir", run.path])
            #expect(r.status == 0, "\(r.stderr)\nserver:\n\(server.text)")
            #expect(try committed(run) == [0, 1])

            var samples: [SampleRecord] = []
            try BufferReader(url: run.appendingPathComponent("rounds/000001/rollouts.jsonl.zst")).read {
                if case .sample(let s) = $0 { samples.append(s) }
            }
            #expect(samples.count == 8)
            for s in samples {
                let j = try #require(s.label?.judge)
                #expect(j.prompt == "Rate 0-9: \(s.prompt!) => \(s.response!)")
                #expect(j.reply != nil, "no reply: \(j.error ?? "")")
                #expect((s.label?.score != nil) == (j.verdict != nil))
            }
            // The first exchange's reply is the judge model's greedy answer to that chat message.
            let first = try #require(samples.first?.label?.judge)
            let line = dir.appendingPathComponent("judge-prompt.jsonl")
            try "{\"prompt\": [{\"role\": \"user\", \"content\": \(jsonString(first.prompt))}]}\n".write(to: line, atomically: true, encoding: .utf8)
            let g = try runRondo(["generate", "--model", judgeModel.path, "--prompts", line.path, "--n", "1", "--temperature", "0",
                                  "--max-new-tokens", "8", "--threads", "1"])
            #expect(g.status == 0, "\(g.stderr)")
            let greedy = try JSONDecoder().decode(JSONValue.self, from: Data(g.stdout.utf8))["response"]?.string
            #expect(first.reply == greedy)
            let metrics = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: run.appendingPathComponent("rounds/000001/metrics.json")))
            #expect(metrics["judge/requests"]?.double == 8)
        }
    }
}
