// Held-out evaluation of a policy after each round (round 0 = the starting policy):
//   eval/accuracy        greedy responses checked by the verifier (when every eval prompt has an answer)
//   eval/reward_mean     the campaign labeller's mean score of the greedy responses
//   eval/kl_to_reference KL(policy ‖ reference) per response, estimated on one sampled response per
//                        prompt (temperature 1) as the mean of Σ_t log π − log π_ref (the k1 estimator)
//   eval/length_mean     mean greedy response length (tokens)
//   eval/distinct_2      distinct bigrams / bigrams over the greedy responses' tokens

import Foundation
import Labeling
import Model
import Sampling
import Tokenizers

struct Evaluator {
    let prompts: [CampaignPrompt]
    let sampling: SamplingSection
    let tokenizer: Tokenizer?
    let seed: UInt64

    /// eval/reward_mean of the greedy responses (and eval/judge_unscored for an HTTP judge).
    func rewardMean(_ labeller: Labeller, _ requests: [LabelRequest]) throws -> [(String, Double)] {
        var rewards: [Float] = [], out: [(String, Double)] = []
        if let judge = labeller as? HTTPJudge {
            // An HTTP judge: all prompts at once; the mean is over the scored ones.
            rewards = try judge.judge(requests).compactMap { $0[0].score }
            out.append(("eval/judge_unscored", Double(requests.count - rewards.count)))
        } else {
            for req in requests { rewards.append(try labeller.checkedScore(req)[0]) }
        }
        out.append(("eval/reward_mean", rewards.reduce(0.0) { $0 + Double($1) } / Double(rewards.count)))
        return out
    }

    /// `progress` counts 2 responses per prompt: the greedy one, then the sampled one of the KL estimate.
    func evaluate(policy: PolicyModel, reference: PolicyModel, labeller: Labeller, useVerifier: Bool,
                  progress: PhaseProgress? = nil) throws -> [(String, Double)] {
        var greedy = sampling.samplingConfig
        greedy.n = 1; greedy.temperature = 0; greedy.topK = 0; greedy.topP = 1
        let g = try Sampler(model: policy.model, adapter: policy.adapter, config: greedy, tokenBytes: tokenizer.map { t in { t.bytes($0) } })
            .generate(prompts.map(\.ids)) { if case .finished = $0 { progress?.advance() } }
        let texts = g.map { text($0.tokens) }
        var out: [(String, Double)] = []
        if useVerifier, prompts.allSatisfy({ $0.answer != nil }) {
            let right = zip(prompts, texts).filter { Verifier.matches($1, $0.answer!) }.count
            out.append(("eval/accuracy", Double(right) / Double(prompts.count)))
        }
        // A pairwise judge gives no scores: no eval/reward_mean (docs/judges.md).
        if (labeller as? HTTPJudge)?.config.mode != .pairwise {
            out += try rewardMean(labeller, zip(prompts, zip(g, texts)).map { p, st in
                LabelRequest(prompt: p.text, promptIDs: p.ids, answer: p.answer, responses: [st.1], responseIDs: [st.0.tokens])
            })
        }

        var sampled = sampling.samplingConfig
        sampled.n = 1; sampled.temperature = 1; sampled.topK = 0; sampled.topP = 1
        sampled.seed = seed ^ 0x4556_414C  // "EVAL"
        let s = try Sampler(model: policy.model, adapter: policy.adapter, config: sampled, tokenBytes: tokenizer.map { t in { t.bytes($0) } })
            .generate(prompts.map(\.ids)) { if case .finished = $0 { progress?.advance() } }
        let ref = try responseLogprobs(reference.model, adapter: reference.adapter, prompts: s.map { prompts[$0.promptIndex].ids }, responses: s.map(\.tokens))
        var kl = 0.0
        for (x, r) in zip(s, ref) {
            for (a, b) in zip(x.logprobs, r) { kl += Double(a) - Double(b) }
        }
        out.append(("eval/kl_to_reference", kl / Double(prompts.count)))
        out.append(("eval/length_mean", Double(g.reduce(0) { $0 + $1.tokens.count }) / Double(prompts.count)))
        out.append(("eval/distinct_2", distinct2(g.map(\.tokens))))
        return out
    }

    func text(_ ids: [Int32]) -> String { tokenizer?.decode(ids, skipSpecialTokens: true) ?? ids.map(String.init).joined(separator: " ") }
}

/// Distinct bigrams over all bigrams of the sequences (NaN when there are none).
func distinct2(_ seqs: [[Int32]]) -> Double {
    var set = Set<Int64>(), total = 0
    for s in seqs where s.count >= 2 {
        for i in 1..<s.count { set.insert(Int64(s[i - 1]) << 32 | Int64(UInt32(bitPattern: s[i]))); total += 1 }
    }
    return total > 0 ? Double(set.count) / Double(total) : .nan
}

/// Per-token log-probabilities of each response after its prompt under `model`, computed in
/// batches of 16 rows in the given order (the same grouping gives the same bits); with `adapter`,
/// under the base `model` with that LoRA adapter on.
func responseLogprobs(_ model: LlamaModel, adapter: LoRAAdapter? = nil, prompts: [[Int32]], responses: [[Int32]], batchSize: Int = 16,
                      owns: (Int) -> Bool = { _ in true }, progress: PhaseProgress? = nil) throws -> [[Float]] {
    let pad = model.config.batchPadID
    return try forwardInBatches(model, adapter: adapter, prompts: prompts, responses: responses, batchSize: batchSize, pad: pad,
                                scoreResponses: true, owns: owns, progress: progress) { out, row, i in
        (0..<responses[i].count).map { out[row + prompts[i].count + $0] }
    }
}

/// Runs the rows prompt + response through `model` in batches of `batchSize` rows, in the given
/// order, with one workspace; `gather(output, first position of row i in output, i)` takes row
/// i's values. `scoreResponses` marks the response tokens as the positions an LM head scores.
/// Only the batches `owns(batch index)` are run (a rank's share); the others' rows come back empty.
func forwardInBatches(_ model: LlamaModel, adapter: LoRAAdapter? = nil, prompts: [[Int32]], responses: [[Int32]], batchSize: Int, pad: Int32,
                      scoreResponses: Bool, owns: (Int) -> Bool = { _ in true }, progress: PhaseProgress? = nil,
                      _ gather: (UnsafeBufferPointer<Float>, Int, Int) -> [Float]) throws -> [[Float]] {
    let maxLen = zip(prompts, responses).map { $0.count + $1.count }.max() ?? 1
    let ws = LlamaWorkspace(config: model.config, maxBatch: batchSize, maxSeqLen: max(1, maxLen))
    let lora = adapter.map { LoRAActivations(adapter: $0, maxRows: ws.maxRows) }
    var out: [[Float]] = []
    for lo in stride(from: 0, to: prompts.count, by: batchSize) {
        let hi = min(prompts.count, lo + batchSize)
        guard owns(lo / batchSize) else {
            out += [[Float]](repeating: [], count: hi - lo)
            continue
        }
        let rows = (lo..<hi).map { prompts[$0] + responses[$0] }
        let batch = scoreResponses ? TokenBatch(rows: rows, pad: pad, scoreFrom: (lo..<hi).map { prompts[$0].count })
                                   : TokenBatch(rows: rows, pad: pad)
        let values = try model.forward(batch, workspace: ws, lora: lora)
        for (b, i) in (lo..<hi).enumerated() { out.append(gather(values, b * batch.seqLen, i)) }
        progress?.advance(by: hi - lo)
    }
    return out
}
