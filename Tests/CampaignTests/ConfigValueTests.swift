// Campaign config values: the DPO loss settings checked by Training's own rules, every number finite,
// duplicate keys refused, and type errors that quote the value found, each with the key's line.

import Campaign
import Foundation
import Testing
import TestSupport

private let minimal = """
    policy: starter
    prompts:
      train: p.jsonl
      eval: e.jsonl
      per_round: 8
    """

/// Parses `minimal + extra` and expects an error containing every fragment.
private func expectConfigError(_ extra: String, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    expectError(CampaignError.self, mentioning: fragments, sourceLocation: sourceLocation) {
        _ = try CampaignConfig.parse(minimal + extra, source: "c.yaml")
    }
}

@Suite struct ConfigValueTests {
    @Test func labelSmoothingOnlyWithRobustAndBelowOneHalf() throws {
        for loss in ["sigmoid", "ipo", "hinge"] {
            expectConfigError("\nalgorithm:\n  loss_type: \(loss)\n  label_smoothing: 0.1\n",
                              ["c.yaml", "'algorithm.label_smoothing' (line 8)", "robust", "'\(loss)' ignores it"])
        }
        expectConfigError("\nalgorithm:\n  loss_type: robust\n  label_smoothing: 0.5\n", ["'algorithm.label_smoothing' (line 8)", "[0, 0.5)"])
        expectConfigError("\nalgorithm:\n  loss_type: robust\n  label_smoothing: -0.1\n", ["'algorithm.label_smoothing' (line 8)", "[0, 0.5)"])
        let ok = try CampaignConfig.parse(minimal + "\nalgorithm:\n  loss_type: robust\n  label_smoothing: 0.2\n", source: "c.yaml")
        #expect(ok.algorithm.labelSmoothing == 0.2)
        expectConfigError("\nalgorithm:\n  type: ppo\n  label_smoothing: 0.1\n", ["'algorithm.label_smoothing'", "robust"])
    }

    @Test func everyNumberMustBeFinite() {
        let cases: [(String, String)] = [
            ("\nalgorithm:\n  beta: .inf\n", "'algorithm.beta' (line 7) is inf"),
            ("\nalgorithm:\n  learning_rate: .nan\n", "'algorithm.learning_rate' (line 7) is nan"),
            ("\nalgorithm:\n  max_grad_norm: -.inf\n", "'algorithm.max_grad_norm' (line 7)"),
            ("\nsampling:\n  temperature: .nan\n", "'sampling.temperature' (line 7)"),
            ("\nlabeller:\n  type: command\n  command: [j]\n  timeout_s: .inf\n", "'labeller.timeout_s' (line 9)"),
            ("\nalarms:\n  kl_max: .nan\n", "'alarms.kl_max' (line 7)"),
            ("\nalgorithm:\n  type: ppo\n  gamma: .nan\n", "'algorithm.gamma' (line 8)"),
        ]
        for (extra, fragment) in cases { expectConfigError(extra, [fragment]) }
        expectConfigError("\nalgorithm:\n  beta: .inf\n", ["finite"])
    }

    @Test func duplicateKeysNameTheKeyAndBothLines() {
        expectConfigError("\nalgorithm:\n  beta: 0.1\n  epochs: 2\n  beta: 0.3\n", ["'algorithm.beta'", "twice", "lines 7 and 9"])
        expectConfigError("\nseed: 1\nseed: 2\n", ["'seed'", "lines 6 and 7"])
        expectConfigError("\nsampling: {n: 4, n: 5}\n", ["'sampling.n'", "twice"])
    }

    @Test func typeErrorsQuoteTheValue() {
        let text = minimal.replacingOccurrences(of: "per_round: 8", with: "per_round: abc")
        expectError(CampaignError.self, mentioning: ["'prompts.per_round' (line 5) is \"abc\", not an integer"]) {
            _ = try CampaignConfig.parse(text, source: "c.yaml")
        }
        expectConfigError("\nalgorithm:\n  beta: high\n", ["'algorithm.beta' (line 7) is \"high\", not a number"])
        expectConfigError("\nlabeller:\n  eval_verifier: maybe\n", ["'labeller.eval_verifier' (line 7) is \"maybe\", not true or false"])
        expectConfigError("\nsampling:\n  n: [1, 2]\n", ["'sampling.n' (line 7) is a list, not a single value"])
        expectConfigError("\nalgorithm:\n  beta: -1\n", ["'algorithm.beta' (line 7) must be"])
    }
}
