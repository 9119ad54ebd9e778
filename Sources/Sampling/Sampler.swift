// Batched sampling with a KV cache and reproducible seeds (the sampler of the RLHF loop).
//
// Prompts × n samples form a queue of rows. `batchSize` cache slots decode at once; when a row
// finishes, its slot is refilled from the queue at the next step (a prefill of the new rows, one
// per distinct prompt, whose cache is copied to that prompt's other new samples). Each step feeds
// one token per active row through `LlamaDecoder.step`, picks every row's next token with its own
// random draw, and records that token's log-probability at temperature 1.
//
// Reproducibility: sample j of prompt i draws its k-th token with
// `Philox(seed: seed, stream: i << 20 | j).uniform(k)` — a counter-based stream, so no state is
// shared between rows — and `LlamaDecoder` gives each row bit-identical logits whatever the other
// rows, their number and the thread count (see LlamaDecode.swift). A sample is therefore a pure
// function of (model, prompt, its index, settings, seed): batch size, refill order and threads
// do not change a single bit (tested at batch size 1 and 64 and with 1 and 2 threads).
//
// Log-probabilities: `logprobs[k]` = log softmax(raw logits)[token k] at temperature 1 (what PPO
// needs as the rollout policy's log-prob), computed by `logSoftmaxGatherForward`, the same kernel
// as the training path. They differ from `LlamaModel.forward` on the same sequence only through
// the logits' rounding (cache attention with per-row products here, blocked products there):
// measured with the earlier sgemm-chain decoder max|Δ|/max|logp| = 0 on the oracle policy (462
// tokens: the same bits), 5.4e-7 on a random one-layer S-width model (463 tokens) and 2.1e-7 on
// the bench's S model (2,048 tokens, max |Δ| 2e-6); with the micro-kernel decoder 5.7e-7 (oracle
// policy), 5.9e-7 (wide model) and 2.5e-7 on a random size-R model (SmolLM2-135M's shape, 768
// tokens, max |Δ| 3e-6, `rondo generate` then `rondo logprobs`); tested ≤ 1e-4 in
// SamplingTests/LogprobGapTests.

import Foundation
import Kernels
import Model

/// One generated response.
public struct Sample: Sendable, Equatable, Codable {
    /// Index of the prompt in the list given to `generate`.
    public var promptIndex: Int
    /// Index of the sample among the prompt's `n`.
    public var sampleIndex: Int
    /// Response token ids (a stop token id, when one ended the sample, is the last).
    public var tokens: [Int32]
    /// log p(token | prompt, earlier tokens) at temperature 1, one per token.
    public var logprobs: [Float]
    /// Why the sample ended.
    public var finishReason: FinishReason

    /// A sample with all its fields.
    public init(promptIndex: Int, sampleIndex: Int, tokens: [Int32], logprobs: [Float], finishReason: FinishReason) {
        self.promptIndex = promptIndex; self.sampleIndex = sampleIndex
        self.tokens = tokens; self.logprobs = logprobs; self.finishReason = finishReason
    }
}

/// What the sampler just did; for progress lines and timing.
public enum SamplerEvent: Sendable {
    /// The first logits of `rows` new sequences are ready (`tokens` prompt tokens were run).
    case prefill(rows: Int, tokens: Int)
    /// One decode step over `rows` sequences returned its logits.
    case step(rows: Int)
    /// A sample is complete.
    case finished(promptIndex: Int, sampleIndex: Int, tokens: Int)
}

/// Generates samples from a causal LM (see the file header for batching and reproducibility).
public final class Sampler {
    /// The policy sampled from: its parameters as they were when the sampler was created (the
    /// decoder reads a copy, `DecodeWeights`); make a new sampler after changing them.
    public let model: LlamaModel
    private let weights: DecodeWeights
    /// The settings of every `generate` call.
    public let config: SamplingConfig
    private let isStopToken: [Bool]
    private let tokenBytes: ((Int32) -> [UInt8])?
    private var decoder: LlamaDecoder?
    private var selectors: [TokenSelector] = []

    /// `tokenBytes` gives the bytes of a token id (the tokenizer's `bytes`); required for stop strings.
    /// With `adapter` (a LoRA on `model`, the frozen base), the decoder's copy holds W + s·B·A, merged
    /// while copying (`DecodeWeights`): the sampler decodes the adapted policy and `model` is untouched.
    public init(model: LlamaModel, adapter: LoRAAdapter? = nil, config: SamplingConfig,
                tokenBytes: ((Int32) -> [UInt8])? = nil) throws {
        try config.validate()
        guard model.config.head == .causalLM else {
            throw SamplingError("sampling needs a causal LM; this model has a score head")
        }
        let V = model.config.vocabSize
        let stops = config.stopTokenIDs ?? model.config.stopTokenIDs.map { Int32($0) }
        var isStop = [Bool](repeating: false, count: V)
        for id in stops {
            guard Int(id) < V else { throw SamplingError("stop token id \(id) is outside the vocabulary (0..<\(V))") }
            isStop[Int(id)] = true
        }
        if !config.stopStrings.isEmpty && tokenBytes == nil {
            throw SamplingError("stop strings need a tokenizer (tokenizer.json in the model directory)")
        }
        self.model = model
        self.weights = DecodeWeights(model: model, adapter: adapter)
        self.config = config
        self.isStopToken = isStop
        self.tokenBytes = tokenBytes
    }

    /// Bytes of the decoder's tiled weights, cache and scratch (the weights alone before a `generate` call).
    public var decoderBytes: Int { decoder?.byteCount ?? weights.byteCount }

    /// The decoder's tiled weight matrices: the bytes a decode step streams from memory.
    public var weightMatrices: UnsafeBufferPointer<Float> { weights.matrices }

    /// Generates `config.n` samples for every prompt; returns them ordered by (prompt, sample).
    /// `firstPromptIndex` numbers the prompts from there (their `promptIndex` and random streams), so
    /// a share of a longer prompt list, e.g. one rank's, samples exactly what the whole list would.
    public func generate(_ prompts: [[Int32]], firstPromptIndex: Int = 0,
                         observer: (SamplerEvent) -> Void = { _ in }) throws -> [Sample] {
        let cfg = config, V = model.config.vocabSize, n = cfg.n
        let positions = max(1, model.config.maxPositionEmbeddings)
        for (i, p) in prompts.enumerated() {
            guard !p.isEmpty else { throw SamplingError("prompt \(i) is empty; start prompts with BOS") }
            if let bad = p.first(where: { $0 < 0 || Int($0) >= V }) {
                throw SamplingError("prompt \(i): token id \(bad) is outside the vocabulary (0..<\(V))")
            }
            guard p.count + cfg.maxNewTokens - 1 <= positions else {
                throw SamplingError("prompt \(i) has \(p.count) tokens; with max_new_tokens \(cfg.maxNewTokens) it needs \(p.count + cfg.maxNewTokens - 1) positions, the model has \(positions) (max_position_embeddings)")
            }
        }
        let total = prompts.count * n
        guard total > 0 else { return [] }
        let slots = min(cfg.batchSize, total)
        let maxLen = prompts.map(\.count).max()! + cfg.maxNewTokens - 1
        let dec = try decoder(slots: slots, maxLen: maxLen)
        while selectors.count < max(1, Threads.count) { selectors.append(TokenSelector(vocabSize: V)) }

        var rows = [Row?](repeating: nil, count: slots)  // by slot; nil = free
        var results = [Sample?](repeating: nil, count: total)
        var next = 0  // queue cursor: row r is sample r % n of prompt r / n
        var active: [Int] = [], feed: [Int32] = [], newSlots: [Int] = []
        var uniqueSlots: [Int] = [], uniquePrompts: [[Int32]] = [], logitRow: [Int] = []
        active.reserveCapacity(slots); feed.reserveCapacity(slots); newSlots.reserveCapacity(slots)
        logitRow.reserveCapacity(slots)
        let picks = Picks(capacity: slots)

        /// Picks the next token of the rows in `slotList` (logits row of k: logits + rowOf(k)·V)
        /// and applies the finish rules.
        func advance(_ slotList: [Int], _ logits: UnsafePointer<Float>, _ rowOf: (Int) -> Int) throws {
            let m = slotList.count
            let tasks = max(1, min(Threads.count, selectors.count, m))
            for k in 0..<m {  // draw k of a row is its k-th response token
                picks.uniform[k] = rows[slotList[k]]!.rng.uniform(UInt64(rows[slotList[k]]!.tokens.count))
            }
            let selectors = selectors
            parallelFor(tasks) { t in
                let sel = selectors[t]
                for k in (m * t / tasks)..<(m * (t + 1) / tasks) {
                    let lr = logits + rowOf(k) * V
                    guard let tok = sel.select(lr, temperature: cfg.temperature, topK: cfg.topK, topP: cfg.topP,
                                               uniform: picks.uniform[k]) else { picks.token[k] = -1; continue }
                    picks.token[k] = tok
                    if let l = sel.logSumExp {  // temperature 1: the selection already summed the row
                        picks.lse[k] = l
                        picks.logp[k] = lr[Int(tok)] - l
                    } else {
                        logSoftmaxGatherForward(logp: picks.logp + k, lse: picks.lse + k, logits: lr,
                                                target: picks.token + k, rows: 1, vocab: V)
                    }
                }
            }
            for k in 0..<m {
                let s = slotList[k], tok = picks.token[k]
                guard tok >= 0 else {
                    let r = rows[s]!
                    throw SamplingError("prompt \(r.prompt), sample \(r.sample): the model's logits at response token \(r.tokens.count) are not finite (NaN or infinity); check the checkpoint")
                }
                rows[s]!.tokens.append(tok)
                rows[s]!.logprobs.append(picks.logp[k])
                var reason: FinishReason? = nil
                if isStopToken[Int(tok)] {
                    reason = .eos
                } else if let bytes = tokenBytes, !rows[s]!.stops.isEmpty, rows[s]!.stops.append(bytes(tok)) {
                    reason = .stop
                } else if rows[s]!.tokens.count >= cfg.maxNewTokens {
                    reason = .length
                }
                if let reason {
                    let r = rows[s]!
                    results[r.prompt * n + r.sample] = Sample(promptIndex: firstPromptIndex + r.prompt, sampleIndex: r.sample,
                                                              tokens: r.tokens, logprobs: r.logprobs,
                                                              finishReason: reason)
                    rows[s] = nil
                    observer(.finished(promptIndex: firstPromptIndex + r.prompt, sampleIndex: r.sample, tokens: r.tokens.count))
                }
            }
        }

        while true {
            // Refill free slots from the queue; one prefill per distinct prompt.
            newSlots.removeAll(keepingCapacity: true)
            for s in 0..<slots where rows[s] == nil && next < total {
                let p = next / n, j = next % n
                rows[s] = Row(prompt: p, sample: j,
                              rng: Philox(seed: cfg.seed, stream: UInt64(firstPromptIndex + p) << 20 | UInt64(j)),
                              stops: StopStringMatcher(cfg.stopStrings), capacity: cfg.maxNewTokens)
                newSlots.append(s)
                next += 1
            }
            if !newSlots.isEmpty {
                uniqueSlots.removeAll(keepingCapacity: true)
                uniquePrompts.removeAll(keepingCapacity: true)
                logitRow.removeAll(keepingCapacity: true)
                for s in newSlots {
                    let p = rows[s]!.prompt
                    // Samples of a prompt are consecutive in the queue: match the last unique prompt.
                    if let last = uniqueSlots.last, rows[last]!.prompt == p {
                        logitRow.append(uniqueSlots.count - 1)
                    } else {
                        logitRow.append(uniqueSlots.count)
                        uniqueSlots.append(s)
                        uniquePrompts.append(prompts[p])
                    }
                }
                let batch = TokenBatch(rows: uniquePrompts, pad: 0)
                let logits = try dec.prefill(batch, slots: uniqueSlots)
                observer(.prefill(rows: newSlots.count, tokens: batch.lengths.reduce(0, +)))
                for (k, s) in newSlots.enumerated() where uniqueSlots[logitRow[k]] != s {
                    dec.cache.copy(slot: uniqueSlots[logitRow[k]], to: s)
                }
                let rowOf = logitRow
                try advance(newSlots, logits.baseAddress!) { rowOf[$0] }
            }
            active.removeAll(keepingCapacity: true)
            feed.removeAll(keepingCapacity: true)
            for s in 0..<slots { if let r = rows[s] { active.append(s); feed.append(r.tokens.last!) } }
            if active.isEmpty {
                if next >= total { break }
                continue
            }
            let logits = try dec.step(slots: active, tokens: feed)
            observer(.step(rows: active.count))
            try advance(active, logits.baseAddress!) { $0 }
        }
        return results.map { $0! }
    }

    /// The decoder, reused across calls while it is large enough (its memory is touched once).
    private func decoder(slots: Int, maxLen: Int) throws -> LlamaDecoder {
        if let d = decoder, d.cache.slots >= slots, d.cache.maxLen >= maxLen { return d }
        decoder = nil
        let d = try LlamaDecoder(model: model, slots: slots, maxLen: maxLen, weights: weights)
        decoder = d
        return d
    }
}

/// A sequence in flight.
private struct Row {
    let prompt: Int
    let sample: Int
    let rng: Philox
    var stops: StopStringMatcher
    var tokens: [Int32] = []
    var logprobs: [Float] = []

    init(prompt: Int, sample: Int, rng: Philox, stops: StopStringMatcher, capacity: Int) {
        self.prompt = prompt; self.sample = sample; self.rng = rng; self.stops = stops
        tokens.reserveCapacity(capacity)
        logprobs.reserveCapacity(capacity)
    }
}

/// Per-row outputs of one selection round, written by Dispatch workers at distinct indices.
private final class Picks {
    let token: UnsafeMutablePointer<Int32>
    let logp: UnsafeMutablePointer<Float>
    let lse: UnsafeMutablePointer<Float>
    let uniform: UnsafeMutablePointer<Float>

    init(capacity: Int) {
        token = .allocate(capacity: capacity); token.initialize(repeating: 0, count: capacity)
        logp = .allocate(capacity: capacity); logp.initialize(repeating: 0, count: capacity)
        lse = .allocate(capacity: capacity); lse.initialize(repeating: 0, count: capacity)
        uniform = .allocate(capacity: capacity); uniform.initialize(repeating: 0, count: capacity)
    }

    deinit { token.deallocate(); logp.deallocate(); lse.deallocate(); uniform.deallocate() }
}
