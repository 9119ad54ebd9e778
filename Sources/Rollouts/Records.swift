// The records of a rollout buffer and their JSON form (docs/rollout-buffer.md is the spec).
//
// A buffer file is JSON lines: one `header` line, then one `sample` line per sampled response,
// then `pair` lines. Every line carries "kind" so `zstdcat f | jq 'select(.kind=="sample")'` works.

import Foundation

/// Identifies the format; a reader refuses other schemas with a hint.
public let rolloutSchema = "rondo.rollouts/1"

/// The first line of a buffer: what produced it.
public struct BufferHeader: Sendable, Equatable {
    public var schema = rolloutSchema
    /// Campaign round (nil outside a campaign, e.g. `rondo generate`).
    public var round: Int?
    /// SHA-256 of the policy checkpoint the samples came from.
    public var policySHA256: String
    /// SHA-256 of the resolved config that produced the buffer.
    public var configSHA256: String?
    public init(round: Int? = nil, policySHA256: String, configSHA256: String? = nil) {
        self.round = round; self.policySHA256 = policySHA256; self.configSHA256 = configSHA256
    }
}

/// The counter-based random stream a sample drew from (Philox key and stream id).
public struct SeedStream: Sendable, Equatable {
    public var seed: UInt64
    public var stream: UInt64
    public init(seed: UInt64, stream: UInt64) { self.seed = seed; self.stream = stream }
}

/// One judge exchange behind a label (HTTP judges): enough to audit the label and replay the
/// round with no network.
public struct JudgeExchange: Sendable, Equatable {
    /// The rendered judge prompt.
    public var prompt: String
    /// The reply's text (or raw body), nil when there was none.
    public var reply: String?
    /// The parsed verdict, nil when the reply did not parse.
    public var verdict: String?
    public var latencyS: Float
    public var retries: Int
    /// Why the sample is unscored, when it is.
    public var error: String?
    public init(prompt: String, reply: String?, verdict: String?, latencyS: Float, retries: Int, error: String?) {
        self.prompt = prompt; self.reply = reply; self.verdict = verdict; self.latencyS = latencyS; self.retries = retries
        self.error = error
    }
}

/// What the labeller said about one response.
public struct Label: Sendable, Equatable {
    /// Which labeller: "verifier", "command:NAME", "reward_model:SHA…".
    public var labeller: String
    /// Scalar score (verifier, judge or reward model).
    public var score: Float?
    /// Free-form verdict for pairwise or categorical judges.
    public var verdict: String?
    /// The judge exchange that produced the score (HTTP judges).
    public var judge: JudgeExchange?
    public init(labeller: String, score: Float? = nil, verdict: String? = nil, judge: JudgeExchange? = nil) {
        self.labeller = labeller; self.score = score; self.verdict = verdict; self.judge = judge
    }
}

/// One sampled response.
public struct SampleRecord: Sendable {
    /// Position among the buffer's samples (0-based); pairs refer to it.
    public var id: Int
    public var promptIndex: Int
    /// The prompt's id in its data set, when it has one.
    public var promptID: String?
    public var sampleIndex: Int
    public var prompt: String?
    public var promptIDs: [Int32]
    public var responseIDs: [Int32]
    public var response: String?
    /// Per-token log-probabilities under the sampling policy at temperature 1.
    public var logprobs: [Float]
    /// Per-token log-probabilities under the reference model, when computed.
    public var refLogprobs: [Float]?
    public var label: Label?
    /// "eos", "stop" or "length".
    public var finishReason: String
    public var seed: SeedStream
    /// PPO: per-token values, advantages and returns, when the round computed them.
    public var values: [Float]?
    public var advantages: [Float]?
    public var returns: [Float]?

    public init(id: Int, promptIndex: Int, promptID: String? = nil, sampleIndex: Int, prompt: String? = nil,
                promptIDs: [Int32], responseIDs: [Int32], response: String? = nil, logprobs: [Float],
                refLogprobs: [Float]? = nil, label: Label? = nil, finishReason: String, seed: SeedStream) {
        self.id = id; self.promptIndex = promptIndex; self.promptID = promptID; self.sampleIndex = sampleIndex
        self.prompt = prompt; self.promptIDs = promptIDs; self.responseIDs = responseIDs; self.response = response
        self.logprobs = logprobs; self.refLogprobs = refLogprobs; self.label = label
        self.finishReason = finishReason; self.seed = seed
    }
}

/// A preference pair built from two samples of the same prompt.
public struct PairRecord: Sendable, Equatable {
    public var promptIndex: Int
    public var chosen: Int
    public var rejected: Int
    /// score(chosen) − score(rejected).
    public var margin: Float
    /// How the pair was chosen, e.g. "best_vs_worst".
    public var how: String
    public init(promptIndex: Int, chosen: Int, rejected: Int, margin: Float, how: String) {
        self.promptIndex = promptIndex; self.chosen = chosen; self.rejected = rejected; self.margin = margin; self.how = how
    }
}

/// One pairwise judge exchange (`labeller.mode: pairwise`): sample `a` was shown as response A and
/// `b` as response B. Each candidate pair is asked in both orders, so a buffer holds two of these
/// per asked pair, (a, b) then (b, a); the pairs the round kept are rebuilt from them.
public struct ComparisonRecord: Sendable, Equatable {
    public var promptIndex: Int
    public var a: Int
    public var b: Int
    /// The exchange; its verdict is "A", "B" or "tie", nil when the reply did not parse.
    public var judge: JudgeExchange
    public init(promptIndex: Int, a: Int, b: Int, judge: JudgeExchange) {
        self.promptIndex = promptIndex; self.a = a; self.b = b; self.judge = judge
    }
}

/// One line of a buffer.
public enum BufferItem: Sendable {
    case header(BufferHeader)
    case sample(SampleRecord)
    case comparison(ComparisonRecord)
    case pair(PairRecord)
}

// MARK: Encoding

extension JSONWriter {
    mutating func optionalString(_ k: StaticString, _ v: String?) {
        key(k); if let v { string(v) } else { null() }
    }
    mutating func optionalFloats(_ k: StaticString, _ v: [Float]?) {
        key(k); if let v { floats(v) } else { null() }
    }

    public mutating func write(_ h: BufferHeader) {
        beginObject()
        key("kind"); string("header")
        key("schema"); string(h.schema)
        key("round"); if let r = h.round { int(r) } else { null() }
        key("policy_sha256"); string(h.policySHA256)
        optionalString("config_sha256", h.configSHA256)
        endObject()
    }

    public mutating func write(_ r: SampleRecord) {
        beginObject()
        key("kind"); string("sample")
        key("id"); int(r.id)
        key("prompt_index"); int(r.promptIndex)
        optionalString("prompt_id", r.promptID)
        key("sample_index"); int(r.sampleIndex)
        optionalString("prompt", r.prompt)
        key("prompt_ids"); ints(r.promptIDs)
        key("response_ids"); ints(r.responseIDs)
        optionalString("response", r.response)
        key("logprobs"); floats(r.logprobs)
        optionalFloats("ref_logprobs", r.refLogprobs)
        key("label")
        if let l = r.label {
            beginObject()
            key("labeller"); string(l.labeller)
            key("score"); if let s = l.score { float(s) } else { null() }
            optionalString("verdict", l.verdict)
            if let j = l.judge { write(j) }
            endObject()
        } else { null() }
        key("finish_reason"); string(r.finishReason)
        key("seed"); beginObject(); key("seed"); uint64(r.seed.seed); key("stream"); uint64(r.seed.stream); endObject()
        if let v = r.values { key("values"); floats(v) }
        if let v = r.advantages { key("advantages"); floats(v) }
        if let v = r.returns { key("returns"); floats(v) }
        endObject()
    }

    mutating func write(_ j: JudgeExchange) {
        key("judge")
        beginObject()
        key("prompt"); string(j.prompt)
        optionalString("reply", j.reply)
        optionalString("verdict", j.verdict)
        key("latency_s"); float(j.latencyS)
        key("retries"); int(j.retries)
        optionalString("error", j.error)
        endObject()
    }

    public mutating func write(_ c: ComparisonRecord) {
        beginObject()
        key("kind"); string("comparison")
        key("prompt_index"); int(c.promptIndex)
        key("a"); int(c.a)
        key("b"); int(c.b)
        write(c.judge)
        endObject()
    }

    public mutating func write(_ p: PairRecord) {
        beginObject()
        key("kind"); string("pair")
        key("prompt_index"); int(p.promptIndex)
        key("chosen"); int(p.chosen)
        key("rejected"); int(p.rejected)
        key("margin"); float(p.margin)
        key("how"); string(p.how)
        endObject()
    }
}

// MARK: Decoding

extension JSONCursor {
    mutating func optionalString() throws -> String? { isNull() ? nil : try string() }
    mutating func optionalFloats() throws -> [Float]? { isNull() ? nil : try floats() }
    mutating func optionalInt() throws -> Int? { isNull() ? nil : try int() }

    /// Parses one buffer line. Unknown keys are skipped (forward compatible); missing required keys fail.
    public mutating func bufferItem() throws -> BufferItem {
        // "kind" is written first; read it, then dispatch.
        try beginObject()
        var first = true
        guard let k = try nextKey(first: &first), k == "kind" else { throw fail("expected \"kind\" as the first key") }
        let kind = try string()
        let item: BufferItem
        switch kind {
        case "sample": item = .sample(try sampleBody(&first))
        case "pair": item = .pair(try pairBody(&first))
        case "comparison": item = .comparison(try comparisonBody(&first))
        case "header": item = .header(try headerBody(&first))
        default: throw fail("unknown record kind \"\(kind)\"")
        }
        try end()
        return item
    }

    private mutating func headerBody(_ first: inout Bool) throws -> BufferHeader {
        var h = BufferHeader(policySHA256: "")
        var schema: String?
        while let k = try nextKey(first: &first) {
            switch k {
            case "schema": schema = try string()
            case "round": h.round = try optionalInt()
            case "policy_sha256": h.policySHA256 = try string()
            case "config_sha256": h.configSHA256 = try optionalString()
            default: try skipValue()
            }
        }
        guard let schema else { throw fail("header without \"schema\"") }
        guard schema == rolloutSchema else {
            throw fail("schema \"\(schema)\" is not \(rolloutSchema); this buffer was written by another Rondo version")
        }
        h.schema = schema
        return h
    }

    private mutating func sampleBody(_ first: inout Bool) throws -> SampleRecord {
        var r = SampleRecord(id: -1, promptIndex: -1, sampleIndex: -1, promptIDs: [], responseIDs: [], logprobs: [],
                             finishReason: "", seed: SeedStream(seed: 0, stream: 0))
        var seen = 0
        while let k = try nextKey(first: &first) {
            switch k {
            case "id": r.id = try int(); seen |= 1
            case "prompt_index": r.promptIndex = try int(); seen |= 2
            case "prompt_id": r.promptID = try optionalString()
            case "sample_index": r.sampleIndex = try int(); seen |= 4
            case "prompt": r.prompt = try optionalString()
            case "prompt_ids": r.promptIDs = try ints().map { Int32(truncatingIfNeeded: $0) }; seen |= 8
            case "response_ids": r.responseIDs = try ints().map { Int32(truncatingIfNeeded: $0) }; seen |= 16
            case "response": r.response = try optionalString()
            case "logprobs": r.logprobs = try floats(); seen |= 32
            case "ref_logprobs": r.refLogprobs = try optionalFloats()
            case "label": r.label = try label()
            case "finish_reason": r.finishReason = try string(); seen |= 64
            case "seed":
                try beginObject()
                var f = true
                while let sk = try nextKey(first: &f) {
                    switch sk {
                    case "seed": r.seed.seed = try uint64()
                    case "stream": r.seed.stream = try uint64()
                    default: try skipValue()
                    }
                }
                seen |= 128
            case "values": r.values = try optionalFloats()
            case "advantages": r.advantages = try optionalFloats()
            case "returns": r.returns = try optionalFloats()
            default: try skipValue()
            }
        }
        let names = ["id", "prompt_index", "sample_index", "prompt_ids", "response_ids", "logprobs", "finish_reason", "seed"]
        for (bit, name) in names.enumerated() where seen & (1 << bit) == 0 {
            throw fail("sample record without \"\(name)\"")
        }
        return r
    }

    private mutating func label() throws -> Label? {
        if isNull() { return nil }
        try beginObject()
        var l = Label(labeller: "")
        var f = true
        while let k = try nextKey(first: &f) {
            switch k {
            case "labeller": l.labeller = try string()
            case "score": l.score = isNull() ? nil : try float()
            case "verdict": l.verdict = try optionalString()
            case "judge": l.judge = try judgeExchange()
            default: try skipValue()
            }
        }
        return l
    }

    private mutating func judgeExchange() throws -> JudgeExchange? {
        if isNull() { return nil }
        try beginObject()
        var j = JudgeExchange(prompt: "", reply: nil, verdict: nil, latencyS: 0, retries: 0, error: nil)
        var f = true
        while let k = try nextKey(first: &f) {
            switch k {
            case "prompt": j.prompt = try string()
            case "reply": j.reply = try optionalString()
            case "verdict": j.verdict = try optionalString()
            case "latency_s": j.latencyS = try float()
            case "retries": j.retries = try int()
            case "error": j.error = try optionalString()
            default: try skipValue()
            }
        }
        return j
    }

    private mutating func comparisonBody(_ first: inout Bool) throws -> ComparisonRecord {
        var c = ComparisonRecord(promptIndex: -1, a: -1, b: -1, judge: JudgeExchange(prompt: "", reply: nil, verdict: nil, latencyS: 0, retries: 0, error: nil))
        var seen = 0
        while let k = try nextKey(first: &first) {
            switch k {
            case "prompt_index": c.promptIndex = try int(); seen |= 1
            case "a": c.a = try int(); seen |= 2
            case "b": c.b = try int(); seen |= 4
            case "judge":
                guard let j = try judgeExchange() else { throw fail("comparison record with a null \"judge\"") }
                c.judge = j; seen |= 8
            default: try skipValue()
            }
        }
        guard seen == 15 else { throw fail("comparison record needs prompt_index, a, b and judge") }
        return c
    }

    private mutating func pairBody(_ first: inout Bool) throws -> PairRecord {
        var p = PairRecord(promptIndex: -1, chosen: -1, rejected: -1, margin: 0, how: "")
        var seen = 0
        while let k = try nextKey(first: &first) {
            switch k {
            case "prompt_index": p.promptIndex = try int(); seen |= 1
            case "chosen": p.chosen = try int(); seen |= 2
            case "rejected": p.rejected = try int(); seen |= 4
            case "margin": p.margin = try float(); seen |= 8
            case "how": p.how = try string(); seen |= 16
            default: try skipValue()
            }
        }
        guard seen == 31 else { throw fail("pair record needs prompt_index, chosen, rejected, margin and how") }
        return p
    }
}
