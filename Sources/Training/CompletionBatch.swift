// Prompt + completion rows laid out for the policy-gradient losses: the model scores only the
// completion tokens (TokenBatch.scoreFrom = prompt length), and the losses see them as a [B, C]
// grid, row b's completion token t at column t (TRL's right-padded `completion_ids`). This file
// converts between the model's per-position output [B·T] and that grid.

import Model

/// Rows of prompt + completion token ids and the [B, C] completion grid of the GRPO / RLOO losses.
public struct CompletionBatch: Sendable {
    /// The model's batch: row b = prompt_b + completion_b, right-padded, scoring from the completion.
    public let tokens: TokenBatch
    /// C: the grid width (≥ the longest completion; TRL pads to the batch's longest).
    public let width: Int
    /// Prompt tokens per row.
    public let promptLengths: [Int]
    /// Completion tokens per row (eos included when present).
    public let completionLengths: [Int]
    /// The id padding the rows.
    public let pad: Int32

    /// Prompts must be non-empty (the first completion token is predicted from the last prompt token).
    public init(prompts: [[Int32]], completions: [[Int32]], width: Int? = nil, pad: Int32) throws {
        guard prompts.count == completions.count, !prompts.isEmpty else {
            throw JobError("completion batch: \(prompts.count) prompts for \(completions.count) completions")
        }
        if let b = prompts.firstIndex(where: \.isEmpty) { throw JobError("completion batch: row \(b) has an empty prompt") }
        let longest = completions.map(\.count).max() ?? 0
        let c = width ?? max(1, longest)
        guard c >= longest, c >= 1 else { throw JobError("completion batch: width \(c) is shorter than the longest completion (\(longest))") }
        self.width = c
        self.pad = pad
        promptLengths = prompts.map(\.count)
        completionLengths = completions.map(\.count)
        tokens = TokenBatch(rows: zip(prompts, completions).map { $0 + $1 }, pad: pad, scoreFrom: promptLengths)
    }

    /// Rows B.
    public var rows: Int { promptLengths.count }

    /// The completion mask [B·C]: true on row b's first completionLengths[b] columns, all false for
    /// rows in `masked` (TRL's `mask_truncated_completions` passes the truncated rows).
    public func mask(masked: [Bool]? = nil) -> [Bool] {
        (0..<(rows * width)).map { i in
            let b = i / width
            return i % width < completionLengths[b] && !(masked?[b] ?? false)
        }
    }

    /// The grid [B·C] of a per-position model output [B·T] (log-probs or entropies); 0 past each completion.
    public func grid(_ output: UnsafeBufferPointer<Float>) -> [Float] {
        let T = tokens.seqLen
        var g = [Float](repeating: 0, count: rows * width)
        for b in 0..<rows {
            for t in 0..<completionLengths[b] { g[b * width + t] = output[b * T + promptLengths[b] + t] }
        }
        return g
    }

    /// The grid [B·C] of per-completion-token values given per row (each as long as its completion).
    public func grid(rows values: [[Float]]) -> [Float] {
        var g = [Float](repeating: 0, count: rows * width)
        for (b, v) in values.enumerated() { for (t, x) in v.prefix(completionLengths[b]).enumerated() { g[b * width + t] = x } }
        return g
    }

    /// The model's output gradient [B·T] for `LlamaModel.backward` from ∂loss/∂grid [B·C].
    public func outputGradient(_ d: [Float]) -> [Float] {
        let T = tokens.seqLen
        var g = [Float](repeating: 0, count: rows * T)
        for b in 0..<rows {
            for t in 0..<completionLengths[b] { g[b * T + promptLengths[b] + t] = d[b * width + t] }
        }
        return g
    }
}
