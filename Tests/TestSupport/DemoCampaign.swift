// A small campaign of the demo's task on the starter policy (policies/starter, data/arithmetic),
// written for tests: the size, threads and algorithm are the caller's.

import Foundation

/// The repository's root (three levels above the oracle fixtures).
public let repositoryRoot = Fixtures.oracle.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Writes `dir/campaign.yaml`: `perRound` prompts × 4 samples of 4 tokens per round, seed 7.
public func demoCampaignConfig(_ dir: URL, rounds: Int, perRound: Int, evalLimit: Int, threads: Int, extra: String = "",
                               algorithm: String) throws -> URL {
    let text = """
        policy: \(repositoryRoot.appendingPathComponent("policies/starter").path)
        prompts:
          train: \(repositoryRoot.appendingPathComponent("data/arithmetic/prompts.jsonl").path)
          eval: \(repositoryRoot.appendingPathComponent("data/arithmetic/eval.jsonl").path)
          per_round: \(perRound)
          eval_limit: \(evalLimit)
        sampling: {n: 4, max_new_tokens: 4, batch_size: 16}
        pairs: {min_margin: 0.5, max_per_prompt: 2}
        algorithm: \(algorithm)
        rounds: \(rounds)
        seed: 7
        threads: \(threads)
        \(extra)
        """
    let url = dir.appendingPathComponent("campaign.yaml")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
}
