// The `labeller: {type: http}` keys: defaults, a resolved config that reads back equal, and
// errors that name the key (and line) for unknown keys and bad values.

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

    @Test func badKeysAndValuesAreNamed() {
        let cases: [(String, [String])] = [
            ("  command: [judge]\n", ["labeller.command", "unknown key", "max_unscored"]),
            ("  mode: pairwise\n", ["labeller.mode", "not implemented"]),
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
