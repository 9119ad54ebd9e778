// Data-parallel optimizer steps: a step's micro-batches are split over N shards (ranks) by a fixed
// rule, each shard's gradients are accumulated with the loss normaliser of the whole step, and the
// shards' gradients are summed in shard order, ((g₀ + g₁) + g₂) + …, before clipping and AdamW.
// Training knows nothing of the transport: the campaign injects a `GradientReducer` — one rank of
// an MPI job (it computes its own shard, the reducer sums the ranks' gradients), or one process
// emulating N ranks (it computes every shard in turn and sums them in the same order, so it
// reproduces an N-rank step bit for bit).

import Foundation
import Kernels
import Model

/// Sums the shards of a data-parallel step.
public protocol GradientReducer: AnyObject {
    /// Shards (ranks) a step is split over.
    var ranks: Int { get }
    /// The shards this process computes, in order: its own rank, or 0..<ranks when emulating.
    var localShards: [Int] { get }
    /// Called after each local shard's gradients were accumulated into `gradients` (k-th of
    /// `localShards`); may take them and zero `gradients` for the next shard.
    func collect(_ gradients: UnsafeMutableBufferPointer<Float>, shard k: Int) throws
    /// After every local shard: leaves Σ over all shards, in shard order, in `gradients` on every rank.
    func finish(_ gradients: UnsafeMutableBufferPointer<Float>) throws
    /// Σ over all shards, in shard order, of per-shard values (`values[k]` is local shard k's; all
    /// the same length); every rank gets the same sums.
    func sum(_ values: [[Double]]) throws -> [Double]
    /// A reducer of the same ranks for another gradient buffer summed in the same steps (PPO's value
    /// model next to its policy).
    func companion() -> GradientReducer
}

extension GradientReducer {
    /// The part of a micro-batch (example indices) that `shard` computes: a contiguous block,
    /// [s·n/N, (s+1)·n/N) — possibly empty when the micro-batch has fewer examples than shards.
    public func part(_ examples: [Int], shard: Int) -> [Int] {
        Array(examples[(shard * examples.count / ranks)..<((shard + 1) * examples.count / ranks)])
    }
}

/// One process computing every shard of an N-rank step: the gradients of shard 0, then + shard 1, …
/// (the same additions, in the same order, as the ranks' reduce-scatter).
public final class EmulatedReducer: GradientReducer {
    public let ranks: Int
    public var localShards: [Int] { Array(0..<ranks) }
    private var total: [Float] = []

    public init(ranks: Int) { self.ranks = ranks }

    public func collect(_ gradients: UnsafeMutableBufferPointer<Float>, shard k: Int) throws {
        if total.count != gradients.count { total = [Float](repeating: 0, count: gradients.count) }
        total.withUnsafeMutableBufferPointer { acc in
            if k == 0 {
                _ = acc.update(fromContentsOf: gradients)
            } else {
                for i in 0..<acc.count { acc[i] += gradients[i] }
            }
        }
        gradients.update(repeating: 0)
    }

    public func finish(_ gradients: UnsafeMutableBufferPointer<Float>) throws {
        total.withUnsafeBufferPointer { _ = gradients.update(fromContentsOf: $0) }
    }

    public func sum(_ values: [[Double]]) throws -> [Double] { rankOrderSum(values) }
    public func companion() -> GradientReducer { EmulatedReducer(ranks: ranks) }
}

/// Σₖ values[k] elementwise, k in order.
public func rankOrderSum(_ values: [[Double]]) -> [Double] {
    guard var out = values.first else { return [] }
    for v in values.dropFirst() {
        require(v.count == out.count, "per-shard values differ in length")
        for i in out.indices { out[i] += v[i] }
    }
    return out
}

extension Trainer {
    /// One data-parallel optimizer step: for every local shard, `body(shard, i)` runs micro-batch i's
    /// share of that shard (forward, loss normalised over the whole step, backward into
    /// `gradients`) and returns its loss; then the shards' gradients and losses are summed in shard
    /// order and `apply` clips and steps AdamW. Without a reducer this is `step`.
    public func step(microBatches n: Int, reducer: GradientReducer?, context: @autoclosure () -> String,
                     _ body: (_ shard: Int, _ i: Int) throws -> Float) throws -> StepStats {
        guard let reducer else { return try step(microBatches: n, context: context(), { try body(0, $0) }) }
        var losses: [[Double]] = []
        let g = UnsafeMutableBufferPointer(start: gradients.base, count: gradients.count)
        for (k, shard) in reducer.localShards.enumerated() {
            var loss = 0.0
            for i in 0..<n {
                let l = try body(shard, i)
                guard l.isFinite else {
                    gradients.zero()
                    throw JobError("\(context()) (shard \(shard) of \(reducer.ranks)): the loss is \(l.isNaN ? "NaN" : "\(l)"); the update was refused and no weights were written. Lower the learning rate (algorithm.learning_rate), or check those examples")
                }
                loss += Double(l)
            }
            losses.append([loss])
            try reducer.collect(g, shard: k)
        }
        try reducer.finish(g)
        return try apply(loss: reducer.sum(losses)[0], context: context())
    }
}
