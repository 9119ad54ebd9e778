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
        #expect(ok.algorithm.dpo.labelSmoothing == 0.2 && ok.algorithm.dpo.lossType == .robust)
        expectConfigError("\nalgorithm:\n  type: ppo\n  label_smoothing: 0.1\n",
                          ["'algorithm.label_smoothing' (line 8)", "applies to type dpo", "this algorithm is ppo"])
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

    @Test func closedSetsNameTheirChoices() {
        expectConfigError("\nalgorithm:\n  loss_type: kto\n", ["'algorithm.loss_type' (line 7) must be sigmoid, ipo, hinge, robust (found 'kto')"])
        expectConfigError("\nalgorithm:\n  type: ppo\n  kl_estimator: k2\n", ["'algorithm.kl_estimator' (line 8) must be k1, k3 (found 'k2')"])
        expectConfigError("\nalgorithm:\n  type: a2c\n", ["'algorithm.type' (line 7) must be dpo, ppo", "(found 'a2c')"])
        expectConfigError("\nalgorithm:\n  schedule: cosine\n", ["'algorithm.schedule' (line 7) must be 'constant'"])
        expectConfigError("\nalgorithm:\n  schedule: steep\n", ["'algorithm.schedule' (line 7) must be constant, linear, cosine"])
    }

    @Test func keysOfAnotherAlgorithmAreRefusedUnlessDefault() throws {
        expectConfigError("\nalgorithm:\n  type: dpo\n  kl_coef: 0.2\n", ["'algorithm.kl_coef' (line 8) applies to type ppo", "remove it"])
        expectConfigError("\nalgorithm:\n  type: ppo\n  beta: 0.3\n", ["'algorithm.beta' (line 8) applies to type dpo"])
        // A config.yaml written before the per-type form holds every key at its default.
        let old = try CampaignConfig.parse(minimal + "\nalgorithm: {type: ppo, beta: 0.1, loss_type: sigmoid, kl_coef: 0.07}\n", source: "c.yaml")
        #expect(old.algorithm.type == .ppo && old.algorithm.ppo.klCoef == 0.07)
    }

    @Test func eachTypeDecodesIntoTrainingsSettingsAndWritesOnlyItsKeys() throws {
        let text = minimal + "\nalgorithm: {type: ppo, kl_estimator: k3, gamma: 0.9, learning_rate: 0.001, weight_decay: 0.01}\n"
        let c = try CampaignConfig.parse(text, source: "c.yaml")
        #expect(c.algorithm.ppo.loss.klEstimator == .k3 && c.algorithm.ppo.loss.gamma == 0.9)
        #expect(c.algorithm.optimizer.lr == 0.001 && c.algorithm.optimizer.adamw.weightDecay == 0.01 && c.algorithm.optimizer.schedule == .constant)
        let yaml = try c.yaml()
        #expect(yaml.contains("kl_estimator: k3") && !yaml.contains("beta") && !yaml.contains("loss_type"), "\(yaml)")
        #expect(try CampaignConfig.parse(yaml, source: "resolved") == c)
        let dpo = try CampaignConfig.parse(minimal, source: "c.yaml").yaml()
        #expect(dpo.contains("loss_type: sigmoid") && !dpo.contains("kl_coef"), "\(dpo)")
    }

    @Test func trainingsOwnChecksRunForEverySection() {
        expectConfigError("\nalgorithm:\n  epochs: 0\n", ["'algorithm.epochs' (line 7) must be at least 1"])
        expectConfigError("\nalgorithm:\n  batch_size: 0\n", ["'algorithm.batch_size' (line 7) must be at least 1"])
        expectConfigError("\nalgorithm:\n  warmup_steps: -2\n", ["'algorithm.warmup_steps' (line 7) must be ≥ 0"])
        expectConfigError("\nalgorithm:\n  learning_rate: -1\n", ["'algorithm.learning_rate' (line 7) must be a non-negative number"])
        expectConfigError("\nalgorithm:\n  type: ppo\n  cliprange: 0\n", ["'algorithm.cliprange' (line 8) must be > 0"])
        expectConfigError("\nalgorithm:\n  type: ppo\n  lam: 1.5\n", ["'algorithm.lam' (line 8) must be in [0, 1]"])
    }
}
