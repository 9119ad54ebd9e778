// What a buffer's `comparison` lines make (pairwise judging, docs/judges.md). They come two by two:
// one pair of samples asked in both orders, (a, b) then (b, a). Both orders preferring the same
// sample keep the pair (a DPO pair, chosen = that sample); both saying `tie` make a tie; different
// answers an order disagreement; an error or an unparseable reply in either order leaves the pair
// unjudged. The campaign makes its pairs and judge/* metrics from this (PairwiseJudging.swift),
// replay rebuilds them, and `rondo inspect` counts and lists it.

/// One pair of samples asked of a pairwise judge in both orders, and what the two verdicts make.
public struct JudgedPair: Sendable, Equatable {
    public enum Outcome: String, Sendable, CaseIterable {
        case kept, tie, disagreement = "order_disagreement", unjudged
    }

    /// The comparison of (a, b), then the one of (b, a).
    public let first: ComparisonRecord
    public let second: ComparisonRecord
    public let outcome: Outcome
    /// A kept pair's preferred sample (its DPO chosen one); nil otherwise.
    public let chosen: Int?

    public var promptIndex: Int { first.promptIndex }
    /// A kept pair's other sample.
    public var rejected: Int? { chosen.map { $0 == first.a ? first.b : first.a } }
    /// An unjudged pair's comparison to report: the first order if it failed, else the second.
    public var unjudgedComparison: ComparisonRecord? { outcome == .unjudged ? (first.judge.error == nil ? second : first) : nil }

    init(_ first: ComparisonRecord, _ second: ComparisonRecord) {
        self.first = first; self.second = second
        guard first.judge.error == nil, second.judge.error == nil,
              let v1 = first.judge.verdict, let v2 = second.judge.verdict else {
            outcome = .unjudged; chosen = nil; return
        }
        let w1 = Self.winner(first, v1), w2 = Self.winner(second, v2)
        if w1 == nil && w2 == nil { outcome = .tie; chosen = nil; return }
        guard let w = w1, w1 == w2 else { outcome = .disagreement; chosen = nil; return }
        outcome = .kept; chosen = w
    }

    /// The sample a verdict prefers (nil for a tie).
    static func winner(_ c: ComparisonRecord, _ verdict: String) -> Int? {
        verdict == "A" ? c.a : verdict == "B" ? c.b : nil
    }

    /// The asked pairs of `comparisons`, in their order. Throws (kind `record`) when they do not come
    /// two by two as one pair in both orders.
    public static func pairs(_ comparisons: [ComparisonRecord]) throws -> [JudgedPair] {
        guard comparisons.count % 2 == 0 else {
            throw BufferError(.record, "\(comparisons.count) pairwise comparisons: each asked pair needs both orders (a, b) and (b, a)")
        }
        return try stride(from: 0, to: comparisons.count, by: 2).map { k in
            let first = comparisons[k], second = comparisons[k + 1]
            guard second.a == first.b, second.b == first.a, second.promptIndex == first.promptIndex else {
                throw BufferError(.record, "comparisons \(k) and \(k + 1) are not one pair in both orders (samples \(first.a)/\(first.b), then \(second.a)/\(second.b))")
            }
            return JudgedPair(first, second)
        }
    }
}

/// How many asked pairs had each outcome (the round's judge/* metrics; `rondo inspect`'s judge line).
public struct JudgedPairCounts: Sendable, Equatable {
    public private(set) var asked = 0, kept = 0, ties = 0, disagreements = 0, unjudged = 0

    public init(_ pairs: [JudgedPair]) {
        asked = pairs.count
        for p in pairs {
            switch p.outcome {
            case .kept: kept += 1
            case .tie: ties += 1
            case .disagreement: disagreements += 1
            case .unjudged: unjudged += 1
            }
        }
    }
}
