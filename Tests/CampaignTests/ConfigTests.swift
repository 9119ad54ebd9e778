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
        #expect(c.sampling.batchSize == 64 && c.sampling.maxNewTokens == 64 && c.sampling.stop.isEmpty)
        #expect(c.algorithm.dpo.lossType == .sigmoid && c.algorithm.dpo.beta == 0.1 && c.rounds == 10 && c.threads == 2)
        // The resolved YAML reads back to the same config.
        #expect(try CampaignConfig.parse(c.yaml(), source: "resolved") == c)
    }

    /// The campaign's keys become the sampler's config: `stop` is Sampling's stop strings, the rest
    /// keep their names, and the resolved YAML writes the campaign's keys back.
    @Test func samplingKeysBecomeTheSamplersConfig() throws {
        let c = try CampaignConfig.parse(minimal + """

            sampling: {n: 3, temperature: 0.5, top_k: 7, top_p: 0.9, max_new_tokens: 12, stop: ["\\n"], batch_size: 5}
            """, source: "s.yaml")
        let sc = c.sampling.samplingConfig
        #expect(sc.n == 3 && sc.temperature == 0.5 && sc.topK == 7 && sc.topP == 0.9)
        #expect(sc.maxNewTokens == 12 && sc.stopStrings == ["\n"] && sc.batchSize == 5 && sc.seed == 0 && sc.stopTokenIDs == nil)
        let yaml = try c.yaml()
        let lines = yaml.split(separator: "\n").map(String.init)
        let section = lines.drop { $0 != "sampling:" }.dropFirst().prefix { $0.hasPrefix("  ") }
        let keys = section.filter { !$0.hasPrefix("  -") && !$0.hasPrefix("    ") }.map { $0.split(separator: ":")[0].trimmingCharacters(in: .whitespaces) }
        #expect(Set(keys) == ["n", "temperature", "top_k", "top_p", "max_new_tokens", "stop", "batch_size"], "\(yaml)")
        #expect(try CampaignConfig.parse(yaml, source: "resolved") == c)
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
            ("\nsampling:\n  n: 0\n", "sampling.n"),
            ("\nsampling:\n  max_new_tokens: 0\n", "sampling.max_new_tokens"),
            ("\nsampling:\n  batch_size: 0\n", "sampling.batch_size"),
            ("\nsampling:\n  stop: [\"\"]\n", "sampling.stop"),
            // The round sets the seed and the model its stop ids: neither is a campaign key.
            ("\nsampling:\n  seed: 3\n", "sampling.seed"),
            ("\nsampling:\n  stop_token_ids: [2]\n", "sampling.stop_token_ids"),
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
