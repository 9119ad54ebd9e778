// Campaign config: defaults, strictness (unknown keys and bad values name the key and line).

import Campaign
import Foundation
import Testing

@Suite struct ConfigTests {
    let minimal = """
        policy: starter
        prompts:
          train: ../data/arithmetic/prompts.jsonl
          eval: ../data/arithmetic/eval.jsonl
        """

    @Test func defaultsFillEverySection() throws {
        let c = try CampaignConfig.parse(minimal, source: "demo.yaml")
        #expect(c.policy == "starter" && c.reference == .initial && c.prompts.perRound == 64)
        #expect(c.sampling.n == 8 && c.labeller.type == .verifier && c.pairs.strategy == .bestVsWorst)
        #expect(c.algorithm.dpo.lossType == .sigmoid && c.algorithm.dpo.beta == 0.1 && c.rounds == 10 && c.threads == 2)
        // The resolved YAML reads back to the same config.
        #expect(try CampaignConfig.parse(c.yaml(), source: "resolved") == c)
    }

    @Test func unlimitedRounds() throws {
        let c = try CampaignConfig.parse(minimal + "\nrounds: unlimited\n", source: "x")
        #expect(c.rounds == nil)
        #expect(try CampaignConfig.parse(c.yaml(), source: "y").rounds == nil)
    }

    @Test func unknownKeyNamesKeyAndLine() {
        let text = minimal + "\nsampling:\n  n: 4\n  temprature: 0.7\n"
        do {
            _ = try CampaignConfig.parse(text, source: "demo.yaml")
            Issue.record("unknown key accepted")
        } catch let e as CampaignError {
            #expect(e.description.contains("demo.yaml") && e.description.contains("sampling.temprature"), "\(e)")
            #expect(e.description.contains("line 7"), "\(e)")
            #expect(e.description.contains("temperature"), "lists the known keys: \(e)")
        } catch { Issue.record("\(error)") }
    }

    @Test func invalidValuesNameTheKey() {
        let cases: [(String, String)] = [
            ("\nsampling:\n  n: 1\n", "sampling.n"),
            ("\nalgorithm:\n  loss_type: kto\n", "algorithm.loss_type"),
            ("\nalgorithm:\n  beta: -1\n", "algorithm.beta"),
            ("\nlabeller:\n  type: command\n", "labeller.command"),
            ("\nlabeller:\n  type: oracle\n", "labeller.type"),
            ("\nreference: latest\n", "reference"),
            ("\nrounds: 0\n", "rounds"),
            ("\nsampling:\n  top_p: 2\n", "sampling.top_p"),
        ]
        for (extra, key) in cases {
            do {
                _ = try CampaignConfig.parse(minimal + extra, source: "c.yaml")
                Issue.record("accepted: \(extra)")
            } catch let e as CampaignError {
                #expect(e.description.contains(key), "\(key): \(e)")
            } catch { Issue.record("\(error)") }
        }
        #expect(throws: CampaignError.self) { try CampaignConfig.parse("prompts: {train: a, eval: b}", source: "p") }
    }
}
