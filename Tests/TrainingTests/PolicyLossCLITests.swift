// `rondo policy-loss` end to end through the built binary, on rows built from the GRPO fixture
// (Tests/Fixtures/grpo): the printed loss, metrics and grad_norm match TRL's for given advantages and
// for rewards + groups (advantages computed by Rondo), for GRPO and RLOO; bad rows fail with the
// file, line and key.

import Foundation
import Model
import Testing
import TestSupport

@Suite(.serialized) struct PolicyLossCLITests {
    static let rollout = GRPOOracle.cases["rollout"]!

    /// One JSON line per fixture row: ids, `old_logprobs` (row b's first n_b values of `old`), the
    /// truncation flag, and either the advantage or the reward + group.
    static func rows(old: [Float]?, advantages: [Float]?) -> String {
        let prompts = rollout["prompts"]!.array!.map { Oracle.ints($0) }
        let promptOf = Oracle.ints(rollout["prompt_of_row"])
        let completions = rollout["completions"]!.array!.map { Oracle.ints($0) }
        let truncated = rollout["is_truncated"]!.array!.map { $0 == .bool(true) }
        let rewards = GRPOOracle.floats(rollout["rewards"])
        let C = rollout["max_completion_length"]!.int!
        return completions.indices.map { b in
            var fields = ["\"prompt_ids\": \(prompts[promptOf[b]])", "\"completion_ids\": \(completions[b])", "\"truncated\": \(truncated[b])"]
            if let old { fields.append("\"old_logprobs\": [\(old[(b * C)..<(b * C + completions[b].count)].map { "\($0)" }.joined(separator: ", "))]") }
            if let advantages { fields.append("\"advantage\": \(advantages[b])") } else {
                fields += ["\"reward\": \(rewards[b])", "\"group\": \"p\(promptOf[b])\""]
            }
            return "{" + fields.joined(separator: ", ") + "}\n"
        }.joined()
    }

    static func run(_ data: String, _ options: [String]) throws -> JSONValue {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("rows.jsonl")
            try data.write(to: url, atomically: true, encoding: .utf8)
            let r = try runRondo(["policy-loss", "--eval-only", "--model", Fixtures.policy.path, "--reference", Fixtures.reference.path,
                                  "--data", url.path] + options)
            #expect(r.status == 0, "stderr: \(r.stderr)")
            return try JSONDecoder().decode(JSONValue.self, from: Data(r.stdout.utf8))
        }
    }

    /// loss = loss_total, grad_norm and every loss metric (and `extra` generation metrics) within tolerance.
    static func expectCase(_ out: JSONValue, _ c: JSONValue, extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) {
        let e = c["loss_total"]!.double!, loss = out["loss"]?.double ?? .nan
        #expect(withinAbsolute(loss, e, GRPOOracle.lossTolerance(e, scale: c["loss_scale"]!.double!) + 1e-7 * abs(e)),
                "loss \(loss) vs \(e)", sourceLocation: sourceLocation)
        let norm = c["grad_norm"]!.double!
        #expect(withinAbsolute(out["grad_norm"]?.double ?? .nan, norm, 1e-4 * norm), "grad_norm \(String(describing: out["grad_norm"])) vs \(norm)",
                sourceLocation: sourceLocation)
        let expected = c["metrics_loss"]!.object!.map { ($0.key, $0.value.double!) } + extra.map { ($0, c["metrics_generation"]![$0]!.double!) }
        for (key, x) in expected {
            let a = out[key]?.double ?? .nan
            #expect(withinAbsolute(a, x, GRPOOracle.metricTolerance(x)), "\(key): \(a) vs \(x)", sourceLocation: sourceLocation)
        }
    }

    @Test func grpoWithAdvantagesMatchesTRL() throws {
        let c = GRPOOracle.cases["grpo_loss"]!["grpo_kl_cliphigh"]!
        let out = try Self.run(Self.rows(old: GRPOOracle.floats(c["inputs"]!["old_per_token_logps"]),
                                         advantages: GRPOOracle.floats(c["inputs"]!["advantages"])),
                               ["--algorithm", "grpo", "--loss-type", "grpo", "--beta", "0.04", "--epsilon-high", "0.28",
                                "--max-completion-length", "8"])
        Self.expectCase(out, c)
    }

    @Test func grpoFromRewardsAndGroupsMatchesTRL() throws {
        let c = GRPOOracle.cases["grpo_loss"]!["grpo_kl_mask_truncated"]!
        let out = try Self.run(Self.rows(old: GRPOOracle.floats(c["inputs"]!["old_per_token_logps"]), advantages: nil),
                               ["--algorithm", "grpo", "--loss-type", "grpo", "--beta", "0.04", "--epsilon-high", "0.28",
                                "--mask-truncated-completions", "--max-completion-length", "8"])
        Self.expectCase(out, c, extra: ["reward", "reward_std", "frac_reward_zero_std", "rewards/reward/mean", "rewards/reward/std"])
    }

    @Test func grpoDefaultsAreDapoWithoutKL() throws {
        let c = GRPOOracle.cases["grpo_loss"]!["dapo_beta0_cliphigh"]!
        let out = try Self.run(Self.rows(old: GRPOOracle.floats(c["inputs"]!["old_per_token_logps"]), advantages: nil),
                               ["--algorithm", "grpo", "--epsilon-high", "0.28"])
        Self.expectCase(out, c)
        #expect(out["kl"] == nil)
    }

    /// RLOO's ratio uses the summed old log-probs: spread each row's designed shift over its tokens.
    @Test func rlooFromRewardsAndGroupsMatchesTRL() throws {
        let c = GRPOOracle.cases["rloo"]!["rloo_beta0_sym"]!
        let inputs = c["inputs"]!
        let gen = GRPOOracle.floats(inputs["generation_old_per_token_logps"]), shift = GRPOOracle.floats(inputs["designed_seq_log_ratio"])
        let mask = Oracle.ints(inputs["completion_mask"]), C = mask.count / shift.count
        let n = (0..<shift.count).map { b in mask[(b * C)..<(b * C + C)].reduce(0, +) }
        let old = gen.indices.map { gen[$0] - shift[$0 / C] / Float(n[$0 / C]) }
        let out = try Self.run(Self.rows(old: old, advantages: nil), ["--algorithm", "rloo", "--beta", "0"])
        Self.expectCase(out, c, extra: ["reward", "reward_std", "frac_reward_zero_std"])
    }

    @Test func badRowsNameTheLineAndKey() throws {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("rows.jsonl")
            let good = "{\"prompt_ids\": [0, 5], \"completion_ids\": [7, 1], \"old_logprobs\": [-1, -2], \"advantage\": 1}\n"
            let cases: [(String, String)] = [
                (good + "{\"prompt_ids\": [0, 5], \"completion_ids\": [7, 1], \"old_logprobs\": [-1], \"advantage\": 1}\n",
                 "rows.jsonl:2: \"old_logprobs\" must be an array of one log-prob per completion token (2)"),
                (good + "{\"prompt_ids\": [0], \"completion_ids\": [7], \"old_logprobs\": [-1], \"reward\": 1}\n",
                 "rows.jsonl:2: \"reward\" needs \"group\""),
                (good + "{\"prompt_ids\": [0], \"completion_ids\": [7], \"logprobs\": [-1], \"advantage\": 1}\n",
                 "rows.jsonl:2: unknown key \"logprobs\""),
                ("{\"prompt_ids\": [0], \"completion_ids\": [7], \"reward\": 1, \"group\": 1}\n"
                    + "{\"prompt_ids\": [0], \"completion_ids\": [7], \"reward\": 1, \"group\": 1}\n"
                    + "{\"prompt_ids\": [0], \"completion_ids\": [7], \"reward\": 1, \"group\": 2}\n",
                 "rows.jsonl:3: group 2.0 has 1 rows"),
            ]
            for (data, message) in cases {
                try data.write(to: url, atomically: true, encoding: .utf8)
                let r = try runRondo(["policy-loss", "--eval-only", "--model", Fixtures.policy.path, "--data", url.path, "--algorithm", "grpo"])
                #expect(r.status != 0)
                #expect(r.stderr.contains(message), "expected '\(message)' in: \(r.stderr)")
            }
            let r = try runRondo(["policy-loss", "--eval-only", "--model", Fixtures.policy.path, "--data", url.path, "--algorithm", "rloo",
                                  "--loss-type", "dapo"])
            #expect(r.status != 0 && r.stderr.contains("--loss-type does not apply to --algorithm rloo"), "\(r.stderr)")
        }
    }
}
