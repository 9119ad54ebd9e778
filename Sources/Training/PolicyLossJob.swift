// `rondo policy-loss`: the GRPO or RLOO loss of a file of sampled completions, evaluated as one
// generation batch and one optimizer micro-batch (the offline twin of a campaign's update, as
// `rondo dpo --eval-only` is for DPO). Prints TRL's `loss`, the reward metrics when the advantages
// are computed here, the loss metrics, and `grad_norm` (the norm of the loss's gradient).
//
// Pass 1 scores every row in chunks (policy at the temperature, with entropies; the reference when
// beta ≠ 0); the loss runs on the whole [B, C] grid; pass 2 re-runs each chunk's forward and
// backpropagates that chunk's rows of ∂loss/∂logps (rows couple only within themselves).

import Foundation
import Kernels
import Model

/// Which loss `rondo policy-loss` evaluates.
public enum PolicyAlgorithm: String, Codable, Sendable, CaseIterable {
    case grpo, rloo
}

/// Options of a policy-loss run.
public struct PolicyLossOptions: Sendable {
    public var model: URL
    /// The reference for the KL term; nil = the policy itself (TRL loads the policy path again).
    public var reference: URL?
    /// JSON lines (PolicyLossData.swift).
    public var data: URL
    public var algorithm: PolicyAlgorithm = .grpo
    public var grpo = GRPOConfig()
    public var rloo = RLOOConfig()
    /// Rows per forward pass.
    public var batchSize = 16
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    public init(model: URL, data: URL) { self.model = model; self.data = data }
}

/// Offline GRPO / RLOO loss evaluation.
public enum PolicyLossJob {
    /// Runs the evaluation; returns the JSON line.
    public static func run(_ o: PolicyLossOptions) throws -> String {
        switch o.algorithm {
        case .grpo: try o.grpo.validate()
        case .rloo: try o.rloo.validate()
        }
        guard o.batchSize >= 1 else { throw JobError("--batch-size must be at least 1") }
        Threads.configure(o.threads)
        let policy = try loadCausalLM(o.model, role: "policy")
        let c = policy.config
        var rows = try TrainingData.readPolicyRows(o.data, vocab: c.vocabSize, eos: c.eosTokenIDs, pad: c.padTokenID)
        try TrainingSupport.checkLengths(rows.map { ($0.prompt.count + $0.completion.count, $0.line) }, config: c, data: o.data)
        let groupSize = try groupRows(&rows, o.data)
        let temperature = o.algorithm == .grpo ? o.grpo.temperature : o.rloo.temperature
        let maskTruncated = o.algorithm == .grpo ? o.grpo.maskTruncatedCompletions : o.rloo.maskTruncatedCompletions
        let batch = try CompletionBatch(prompts: rows.map(\.prompt), completions: rows.map(\.completion), pad: c.batchPadID)
        let mask = batch.mask(masked: maskTruncated ? rows.map(\.truncated) : nil)
        let scorer = Scorer(batch: batch, chunk: o.batchSize)
        let beta = o.algorithm == .grpo ? o.grpo.beta : o.rloo.beta
        var refLogps: [Float]?
        if beta != 0 {
            let refURL = o.reference ?? o.model
            let ref = refURL == o.model ? policy : try loadCausalLM(refURL, role: "reference")
            guard ref.config.vocabSize == c.vocabSize else {
                throw JobError("\(refURL.path): the reference's vocabulary (\(ref.config.vocabSize)) differs from the policy's (\(c.vocabSize))")
            }
            refLogps = try scorer.score(ref, temperature: temperature, entropies: false).logps
        }
        let (logps, entropies) = try scorer.score(policy, temperature: temperature, entropies: true)
        let old = rows[0].oldLogprobs == nil ? nil : batch.grid(rows: rows.map { $0.oldLogprobs! })
        var lossBatch = PolicyLossBatch(width: batch.width, logps: logps, mask: mask, oldLogps: old, refLogps: refLogps,
                                        advantages: [], entropies: entropies)
        let (result, rewardMetrics) = try evaluate(&lossBatch, rows: rows, groupSize: groupSize, options: o)
        guard result.loss.isFinite else { throw JobError("\(o.data.path): the loss is not finite (\(result.loss)); check the old log-probs") }
        let grads = try scorer.gradients(policy, temperature: temperature, dLogps: result.dLogps)
        let norm = Double(GradientClipping.norm(grads.base, count: grads.count))
        return metricsJSON([("loss", result.loss)] + rewardMetrics + result.metrics + [("grad_norm", norm)])
    }

    /// Advantages (given, or from rewards as the campaign computes them) and the loss.
    static func evaluate(_ b: inout PolicyLossBatch, rows: [PolicyRow], groupSize g: Int?, options o: PolicyLossOptions)
        throws -> (PolicyLossResult, [(String, Double)])
    {
        var metrics: [(String, Double)] = []
        if let g {
            let rewards = rows.map { [$0.reward ?? .nan] }
            let adv: GroupAdvantages
            switch o.algorithm {
            case .grpo:
                adv = try GroupAdvantage.grpo(rewards: rewards, groupSize: g, names: ["reward"], config: o.grpo)
            case .rloo:
                guard o.rloo.beta == 0 || b.oldLogps != nil else {
                    throw JobError("\(o.data.path): RLOO with beta \(o.rloo.beta) needs \"old_logprobs\" (the KL penalty uses the generation-time log-probs); add them or pass --beta 0")
                }
                let (old, ref) = (b.oldLogps!, b.refLogps ?? [])
                let kl = b.maskedRowSums { Double(old[$0]) - Double(ref[$0]) }
                adv = try GroupAdvantage.rloo(rewards: rewards, groupSize: g, names: ["reward"], klPerRow: o.rloo.beta == 0 ? nil : kl,
                                              klTokens: b.mask.filter { $0 }.count, config: o.rloo)
            }
            b.advantages = adv.advantages.map { Float($0) }
            metrics = adv.metrics
        } else {
            b.advantages = rows.map { Float($0.advantage!) }
        }
        switch o.algorithm {
        case .grpo:
            let tokens = b.mask.filter { $0 }.count
            return (try GRPOLoss.compute(b, scaling: PolicyLossScaling(numItemsInBatch: tokens), config: o.grpo), metrics)
        case .rloo:
            guard let old = b.oldLogps else {
                throw JobError("\(o.data.path): RLOO's ratio needs \"old_logprobs\" in every row (the generation-time log-probs)")
            }
            return (try RLOOLoss.compute(b, oldSequenceLogps: b.maskedRowSums { Double(old[$0]) }, config: o.rloo), metrics)
        }
    }

    /// With rewards: orders the rows group by group (groups in order of first appearance) and returns
    /// the group size; with advantages: nil.
    static func groupRows(_ rows: inout [PolicyRow], _ url: URL) throws -> Int? {
        guard rows[0].advantage == nil else { return nil }
        var order: [String] = [], members: [String: [PolicyRow]] = [:]
        for r in rows {
            if members[r.group!] == nil { order.append(r.group!) }
            members[r.group!, default: []].append(r)
        }
        let g = members[order[0]]!.count
        for key in order where members[key]!.count != g || g < 2 {
            let r = members[key]![0]
            throw JobError("\(url.path):\(r.line): group \(key.dropFirst(2)) has \(members[key]!.count) rows, but every group needs the same number (≥ 2) of completions (group \(order[0].dropFirst(2)) has \(g))")
        }
        rows = order.flatMap { members[$0]! }
        return g
    }

    static func loadCausalLM(_ url: URL, role: String) throws -> LlamaModel {
        let loaded = try ModelDirectory.load(url)
        guard loaded.config.head == .causalLM else {
            throw JobError("\(url.path): is a reward / sequence-classification model; the \(role) must be a causal LM")
        }
        return LlamaModel(config: loaded.config, parameters: loaded.parameters)
    }
}

/// Scores a completion batch in chunks of rows and backpropagates per chunk.
struct Scorer {
    let batch: CompletionBatch
    let chunk: Int

    var ranges: [Range<Int>] { stride(from: 0, to: batch.rows, by: chunk).map { $0..<min(batch.rows, $0 + chunk) } }

    func part(_ r: Range<Int>) throws -> CompletionBatch {
        let t = batch.tokens, T = t.seqLen
        let prompts = r.map { b in Array(t.tokens[(b * T)..<(b * T + batch.promptLengths[b])]) }
        let completions = r.map { b in Array(t.tokens[(b * T + batch.promptLengths[b])..<(b * T + t.lengths[b])]) }
        return try CompletionBatch(prompts: prompts, completions: completions, width: batch.width, pad: batch.pad)
    }

    func workspace(_ model: LlamaModel, temperature: Double, entropies: Bool) -> LlamaWorkspace {
        let ws = LlamaWorkspace(config: model.config, maxBatch: min(chunk, batch.rows), maxSeqLen: batch.tokens.seqLen)
        ws.head = LMHeadOptions(temperature: temperature, entropies: entropies)
        return ws
    }

    /// Per-token log-probs (and entropies) [B·C] of every row.
    func score(_ model: LlamaModel, temperature: Double, entropies: Bool) throws -> (logps: [Float], entropies: [Float]?) {
        let ws = workspace(model, temperature: temperature, entropies: entropies)
        var logps: [Float] = [], ent: [Float] = []
        for r in ranges {
            let p = try part(r)
            let out = try model.forward(p.tokens, workspace: ws)
            logps += p.grid(out)
            if entropies { ent += p.grid(UnsafeBufferPointer(start: ws.entropy, count: p.rows * p.tokens.seqLen)) }
        }
        return (logps, entropies ? ent : nil)
    }

    /// The parameter gradient of Σ dLogps · logps.
    func gradients(_ model: LlamaModel, temperature: Double, dLogps: [Float]) throws -> ParameterBuffer {
        let ws = workspace(model, temperature: temperature, entropies: false)
        let grads = ParameterBuffer(layout: model.layout)
        for r in ranges {
            let p = try part(r)
            try model.forward(p.tokens, workspace: ws)
            p.outputGradient(Array(dLogps[(r.lowerBound * batch.width)..<(r.upperBound * batch.width)])).withUnsafeBufferPointer {
                model.backward(p.tokens, outputGradient: $0, gradients: grads, workspace: ws)
            }
        }
        return grads
    }
}
