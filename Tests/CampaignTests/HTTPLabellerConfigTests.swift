// The `labeller: {type: http}` keys: defaults, a resolved config that reads back equal, and
// errors that name the key (and line) for unknown keys and bad values; pairwise judging's keys and
// the combinations it refuses (pairwise ⇔ pairs.strategy judge_pairwise, DPO only).

import Campaign
import Foundation
import Testing

@Suite struct HTTPLabellerConfigTests {
    let minimal = """
        policy: starter
        prompts:
          train: p.jsonl
          eval: e.jsonl
        labeller:
          type: http
          url: http://127.0.0.1:8000/v1/chat/completions

        """

    @Test func defaultsAndRoundTrip() throws {
        let c = try CampaignConfig.parse(minimal + "  api_key_env: JUDGE_KEY\n  name: rubric\n", source: "c.yaml")
        let h = try #require(c.labeller.http)
        #expect(c.labeller.type == .http && c.labeller.name == "rubric" && h.apiKeyEnv == "JUDGE_KEY")
        #expect(h.model == "judge" && h.mode == .pointwise && h.temperature == 0 && h.maxTokens == 64 && h.concurrency == 4)
        #expect(h.timeoutS == 60 && h.retries == 3 && h.maxRequestsPerS == nil && h.maxUnscored == 0.2 && h.parse == nil)
        let yaml = try c.yaml()
        #expect(try CampaignConfig.parse(yaml, source: "resolved") == c)
        #expect(!yaml.contains("http:\n"), "the judge's keys sit in the labeller mapping: \(yaml)")
    }

    @Test func pairwiseJudgingWithJudgePairwisePairs() throws {
        let c = try CampaignConfig.parse(minimal + "  mode: pairwise\npairs: {strategy: judge_pairwise}\n", source: "c.yaml")
        #expect(c.labeller.http?.mode == .pairwise && c.pairs.strategy == .judgePairwise)
        #expect(c.pairs.candidatesPerPrompt == nil && c.pairs.candidates == 2)
        #expect(try CampaignConfig.parse(try c.yaml(), source: "resolved") == c)
        let three = try CampaignConfig.parse(minimal + "  mode: pairwise\npairs: {strategy: judge_pairwise, candidates_per_prompt: 3}\n", source: "c.yaml")
        let threeYAML = try three.yaml(), pointwiseYAML = try CampaignConfig.parse(minimal, source: "c.yaml").yaml()
        #expect(three.pairs.candidates == 3 && threeYAML.contains("candidates_per_prompt: 3"))
        #expect(!pointwiseYAML.contains("candidates_per_prompt"))
    }

    @Test func badKeysAndValuesAreNamed() {
        let cases: [(String, [String])] = [
            ("  command: [judge]\n", ["labeller.command", "unknown key", "max_unscored"]),
            ("  mode: pairwise\n", ["pairs.strategy", "must be judge_pairwise", "found best_vs_worst"]),
            ("pairs: {strategy: judge_pairwise}\n", ["pairs.strategy", "needs labeller: {type: http, mode: pairwise}", "labeller.mode: pointwise"]),
            ("  mode: pairwise\npairs: {strategy: judge_pairwise}\nalgorithm: {type: grpo}\n", ["algorithm.type", "must be dpo", "found grpo"]),
            ("  mode: pairwise\npairs: {strategy: judge_pairwise, candidates_per_prompt: 0}\n", ["pairs.candidates_per_prompt", "≥ 1"]),
            ("  mode: pairwise\npairs: {strategy: judge_pairwise, min_margin: 0.5}\n", ["pairs.min_margin", "not used by judge_pairwise"]),
            ("  mode: pairwise\npairs: {strategy: judge_pairwise, max_per_prompt: 2}\n", ["pairs.max_per_prompt", "candidates_per_prompt"]),
            ("pairs: {candidates_per_prompt: 3}\n", ["pairs.candidates_per_prompt", "only applies to pairs.strategy: judge_pairwise"]),
            ("  parse: 'Score: [0-9]+'\n", ["labeller.parse", "capture group"]),
            ("  concurrency: 0\n", ["labeller.concurrency"]),
            ("  max_unscored: 2\n", ["labeller.max_unscored"]),
            ("  timeout_s: 0\n", ["labeller.timeout_s"]),
            ("  api_key_env: 'KEY=sk-1'\n", ["labeller.api_key_env"]),
        ]
        for (extra, fragments) in cases {
            do {
                _ = try CampaignConfig.parse(minimal + extra, source: "c.yaml")
                Issue.record("accepted: \(extra)")
            } catch let e as CampaignError {
                for f in fragments { #expect(e.description.contains(f), "\(f): \(e)") }
            } catch { Issue.record("\(error)") }
        }
        do {
            _ = try CampaignConfig.parse(minimal.replacingOccurrences(of: "http://127.0.0.1:8000/v1/chat/completions", with: "localhost:8000"), source: "c.yaml")
            Issue.record("accepted a URL without a scheme")
        } catch { #expect("\(error)".contains("labeller.url"), "\(error)") }
    }
}
