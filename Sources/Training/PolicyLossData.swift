// Rows of `rondo policy-loss`: one sampled completion per JSON line, as a GRPO / RLOO round holds it.
//
//   {"prompt_ids": [...], "completion_ids": [...], "old_logprobs": [...], "truncated": false,
//    "advantage": 0.7}                                  advantages given
//   {..., "reward": 1.5, "group": "q17"}                 advantages computed as the campaign would
//
// `old_logprobs` are the generation-time log-probs of each completion token (at the sampling
// temperature); omit them in every row for GRPO's on-policy case (ratio exactly 1). `truncated`
// (default: the last token is neither eos nor pad, TRL's rule) drives `mask_truncated_completions`.
// `reward` may be null (the reward function could not score the completion). Rows of one `group`
// (any JSON string or number) are the completions of one prompt; every group has the same size.

import Foundation
import Model

/// One row of `rondo policy-loss`.
public struct PolicyRow: Sendable {
    public var prompt: [Int32]
    public var completion: [Int32]
    public var oldLogprobs: [Float]?
    public var truncated: Bool
    public var advantage: Double?
    public var reward: Double?
    public var group: String?
    /// 1-based line in the data file.
    public var line: Int
}

extension TrainingData {
    /// Reads and checks the rows of `rondo policy-loss` (errors name the file, line and key).
    public static func readPolicyRows(_ url: URL, vocab: Int, eos: [Int], pad: Int?) throws -> [PolicyRow] {
        let rows = try readLines(url, encoder: nil) { obj, ctx -> PolicyRow in
            let known: Set = ["prompt_ids", "completion_ids", "old_logprobs", "truncated", "advantage", "reward", "group"]
            if let bad = obj.keys.sorted().first(where: { !known.contains($0) }) {
                throw ctx.fail("unknown key \"\(bad)\"; rows hold \(known.sorted().joined(separator: ", "))")
            }
            let prompt = try ctx.ids("prompt", obj, encoder: nil, completion: false)
            let completion = try ctx.ids("completion", obj, encoder: nil, completion: true)
            try ctx.check(prompt: prompt, "prompt_ids"); try ctx.check(nonEmpty: completion, "completion_ids")
            try ctx.check(vocab: vocab, prompt); try ctx.check(vocab: vocab, completion)
            var row = PolicyRow(prompt: prompt, completion: completion, oldLogprobs: nil, truncated: false, line: ctx.line)
            if let v = obj["old_logprobs"] {
                row.oldLogprobs = try logprobs(v, count: completion.count, ctx)
            }
            switch obj["truncated"] {
            case nil: row.truncated = !(eos.contains(Int(completion.last!)) || pad == Int(completion.last!))
            case .bool(let b)?: row.truncated = b
            default: throw ctx.fail("\"truncated\" must be true or false")
            }
            try readTarget(obj, into: &row, ctx)
            return row
        }
        try checkConsistent(rows, url)
        return rows
    }

    /// `old_logprobs`: one finite number ≤ 0 per completion token.
    static func logprobs(_ v: JSONValue, count: Int, _ ctx: LineContext) throws -> [Float] {
        guard let a = v.array, a.count == count else {
            throw ctx.fail("\"old_logprobs\" must be an array of one log-prob per completion token (\(count))")
        }
        return try a.enumerated().map { i, x in
            guard let d = x.double, d.isFinite, d <= 0 else {
                throw ctx.fail("\"old_logprobs\"[\(i)] must be a finite log-probability ≤ 0, found \(x)")
            }
            return Float(d)
        }
    }

    /// `advantage`, or `reward` (number or null) + `group`.
    static func readTarget(_ obj: [String: JSONValue], into row: inout PolicyRow, _ ctx: LineContext) throws {
        switch (obj["advantage"], obj["reward"], obj["group"]) {
        case (let a?, nil, nil):
            guard let d = a.double, d.isFinite else { throw ctx.fail("\"advantage\" must be a finite number, found \(a)") }
            row.advantage = d
        case (nil, let r?, let g?):
            if r != .null {
                guard let d = r.double, d.isFinite else { throw ctx.fail("\"reward\" must be a finite number or null (unscorable), found \(r)") }
                row.reward = d
            }
            switch g {
            case .string(let s): row.group = "s:" + s
            case .number(let n): row.group = "n:\(n)"
            default: throw ctx.fail("\"group\" must be a string or a number naming the row's prompt, found \(g)")
            }
        case (.some, _, _):
            throw ctx.fail("give either \"advantage\" or \"reward\" + \"group\", not both")
        case (nil, nil, _):
            throw ctx.fail("missing \"advantage\" (or \"reward\" + \"group\")")
        case (nil, .some, nil):
            throw ctx.fail("\"reward\" needs \"group\" (the rows of one prompt share it)")
        }
    }

    /// Every row gives the same kind of target and old log-probs either everywhere or nowhere.
    static func checkConsistent(_ rows: [PolicyRow], _ url: URL) throws {
        let first = rows[0]
        for r in rows.dropFirst() {
            if (r.advantage == nil) != (first.advantage == nil) {
                throw JobError("\(url.path):\(r.line): \(r.advantage == nil ? "\"reward\" + \"group\"" : "\"advantage\"") but line \(first.line) gives \(first.advantage == nil ? "\"reward\" + \"group\"" : "\"advantage\""); use one form in the whole file")
            }
            if (r.oldLogprobs == nil) != (first.oldLogprobs == nil) {
                throw JobError("\(url.path):\(r.line): \"old_logprobs\" must be given in every row or in none (line \(first.line) \(first.oldLogprobs == nil ? "has none" : "has them"))")
            }
        }
    }
}
