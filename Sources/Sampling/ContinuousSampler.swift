// Continuous batching for a server: requests arrive at any time, each with its own settings, and
// share the decoder's cache slots. One thread owns the decoder. Every loop it fills free slots
// from the queue (one prefill per request, its cache copied to the request's other choices), runs
// one decode step over every active slot, picks each row's next token with the row's settings,
// and reports tokens and finishes through the request's callback. A finished or cancelled row
// frees its slot for the next queued row at the next step, so short requests never wait for long
// ones. Choice j of a request draws from Philox(seed, stream: j) — the stream `Sampler` gives
// sample j of prompt 0 — so a request equals `rondo generate` on that one prompt with the same
// seed and settings, and LlamaDecoder's rows do not depend on their neighbours.

import Foundation
import Kernels
import Model

/// One request: a prompt and how to sample its `n` choices.
public struct SlotRequest: Sendable {
    public var prompt: [Int32]
    public var n = 1
    public var temperature: Float = 1
    public var topP: Float = 1
    public var maxNewTokens = 16
    public var stopStrings: [String] = []
    public var seed: UInt64 = 0
    public init(prompt: [Int32]) { self.prompt = prompt }
}

/// What happens to a request's choices, in order per choice.
public enum SlotEvent: Sendable {
    /// Choice `choice` produced token `id` with log-probability `logprob` (temperature 1).
    case token(choice: Int, id: Int32, logprob: Float)
    case finished(choice: Int, reason: FinishReason)
    /// The request could not run (a broken model); no further events.
    case failed(String)
}

/// A submitted request; `cancel` frees its slots at the next step (a client that went away).
public final class SlotTicket: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    public func cancel() { lock.withLock { cancelled = true } }
    var isCancelled: Bool { lock.withLock { cancelled } }
}

public final class ContinuousSampler: @unchecked Sendable {
    public let model: LlamaModel
    public let slots: Int
    public let maxLen: Int
    private let decoder: LlamaDecoder
    private let isStop: [Bool]
    private let tokenBytes: (@Sendable (Int32) -> [UInt8])?
    private let selector: TokenSelector
    private let cond = NSCondition()
    private var queue: [(Job, Int)] = []   // (request, choice) rows waiting for a slot
    private var stopping = false
    private var rows: [Row?]
    private var thread: Thread?
    /// Tokens produced since start (for throughput figures).
    public private(set) var tokensProduced = 0

    final class Job {
        let request: SlotRequest
        let ticket: SlotTicket
        let events: @Sendable (SlotEvent) -> Void
        var prefilledSlot: Int?   // the slot holding this request's prompt, while it is live
        init(_ r: SlotRequest, _ t: SlotTicket, _ e: @escaping @Sendable (SlotEvent) -> Void) { request = r; ticket = t; events = e }
    }

    struct Row {
        let job: Job
        let choice: Int
        let rng: Philox
        var stops: StopStringMatcher
        var count = 0
        var last: Int32 = 0
    }

    /// `slots` sequences decode together, each up to `maxLen` positions (prompt and response).
    public init(model: LlamaModel, slots: Int, maxLen: Int, tokenBytes: (@Sendable (Int32) -> [UInt8])?) throws {
        self.model = model
        self.slots = slots
        self.maxLen = maxLen
        decoder = try LlamaDecoder(model: model, slots: slots, maxLen: maxLen)
        var stop = [Bool](repeating: false, count: model.config.vocabSize)
        for id in model.config.stopTokenIDs where id < stop.count { stop[id] = true }
        isStop = stop
        self.tokenBytes = tokenBytes
        selector = TokenSelector(vocabSize: model.config.vocabSize)
        rows = Array(repeating: nil, count: slots)
    }

    /// Checks a request against the model: token ids in the vocabulary, room for the response.
    public func check(_ r: SlotRequest) throws {
        let V = model.config.vocabSize
        if let bad = r.prompt.first(where: { $0 < 0 || Int($0) >= V }) {
            throw SamplingError("token id \(bad) is outside the vocabulary (0..<\(V))")
        }
        try PromptTokens.checkLength(r.prompt.count, maxNewTokens: r.maxNewTokens, positions: maxLen, setting: "max_tokens")
        if !r.stopStrings.isEmpty && tokenBytes == nil { throw SamplingError("stop strings need the model's tokenizer.json") }
    }

    /// Queues `r` (checked first); `events` is called on the sampler's thread.
    public func submit(_ r: SlotRequest, events: @escaping @Sendable (SlotEvent) -> Void) throws -> SlotTicket {
        try check(r)
        let ticket = SlotTicket()
        let job = Job(r, ticket, events)
        cond.lock()
        if thread == nil {
            let t = Thread { [weak self] in self?.loop() }
            t.name = "rondo-serve-decoder"
            t.start()
            thread = t
        }
        for j in 0..<r.n { queue.append((job, j)) }
        cond.signal()
        cond.unlock()
        return ticket
    }

    /// Stops the decoder thread after the current step; queued and running requests are cancelled.
    public func shutdown() {
        cond.lock(); stopping = true; cond.signal(); cond.unlock()
    }

    private func loop() {
        while true {
            cond.lock()
            while queue.isEmpty && rows.allSatisfy({ $0 == nil }) && !stopping { cond.wait() }
            if stopping {
                cond.unlock()
                return
            }
            var admitted: [Int] = []
            for s in 0..<slots where rows[s] == nil && !queue.isEmpty {
                let (job, choice) = queue.removeFirst()
                if job.ticket.isCancelled { continue }
                rows[s] = Row(job: job, choice: choice, rng: Philox(seed: job.request.seed, stream: UInt64(choice)),
                              stops: StopStringMatcher(job.request.stopStrings))
                admitted.append(s)
            }
            cond.unlock()
            do {
                try prefill(admitted)
                try step()
            } catch {
                fail("\(error)")
            }
        }
    }

    /// Runs each newly admitted request's prompt once and copies it to its other new choices.
    private func prefill(_ admitted: [Int]) throws {
        guard !admitted.isEmpty else { return }
        var unique: [Int] = [], logitRow: [Int] = []
        for s in admitted {
            let job = rows[s]!.job
            if let k = unique.firstIndex(where: { rows[$0]!.job === job }) { logitRow.append(k); continue }
            logitRow.append(unique.count)
            unique.append(s)
        }
        let logits = try decoder.prefill(TokenBatch(rows: unique.map { rows[$0]!.job.request.prompt }, pad: 0), slots: unique)
        for (k, s) in admitted.enumerated() where unique[logitRow[k]] != s { decoder.cache.copy(slot: unique[logitRow[k]], to: s) }
        let V = model.config.vocabSize
        for (k, s) in admitted.enumerated() { advance(s, logits.baseAddress! + logitRow[k] * V) }
    }

    /// One token for every active row that has one to feed.
    private func step() throws {
        var active: [Int] = [], feed: [Int32] = []
        for s in 0..<slots {
            guard let r = rows[s] else { continue }
            if r.job.ticket.isCancelled { rows[s] = nil; continue }
            if r.count > 0 { active.append(s); feed.append(r.last) }
        }
        guard !active.isEmpty else { return }
        let logits = try decoder.step(slots: active, tokens: feed)
        let V = model.config.vocabSize
        for (k, s) in active.enumerated() { advance(s, logits.baseAddress! + k * V) }
    }

    /// Picks slot s's next token from its logits and applies the finish rules.
    private func advance(_ s: Int, _ logits: UnsafePointer<Float>) {
        guard var r = rows[s] else { return }
        let q = r.job.request, V = model.config.vocabSize
        guard let tok = selector.select(logits, temperature: q.temperature, topK: 0, topP: q.topP, uniform: r.rng.uniform(UInt64(r.count))) else {
            r.job.events(.failed("the model's logits are not finite (NaN or infinity); check the checkpoint"))
            r.job.ticket.cancel()
            rows[s] = nil
            return
        }
        var lp: Float = 0, lse: Float = 0, target = tok
        if let l = selector.logSumExp { lp = logits[Int(tok)] - l } else {
            logSoftmaxGatherForward(logp: &lp, lse: &lse, logits: logits, target: &target, rows: 1, vocab: V)
        }
        r.count += 1
        r.last = tok
        tokensProduced += 1
        r.job.events(.token(choice: r.choice, id: tok, logprob: lp))
        var reason: FinishReason? = nil
        if isStop[Int(tok)] {
            reason = .eos
        } else if let bytes = tokenBytes, !r.stops.isEmpty, r.stops.append(bytes(tok)) {
            reason = .stop
        } else if r.count >= q.maxNewTokens {
            reason = .length
        }
        if let reason {
            r.job.events(.finished(choice: r.choice, reason: reason))
            rows[s] = nil
        } else {
            rows[s] = r
        }
    }

    /// A step failed: every live request is told and dropped.
    private func fail(_ message: String) {
        for s in 0..<slots {
            if let r = rows[s], !r.job.ticket.isCancelled { r.job.events(.failed(message)); r.job.ticket.cancel() }
            rows[s] = nil
        }
    }
}
