// Choosing the next token from a row of logits: greedy argmax, or inverse-CDF sampling from the
// temperature-scaled distribution after top-k and top-p filtering, with one uniform draw.
//
// Order of the filters as transformers' logits warpers (TemperatureLogitsWarper →
// TopKLogitsWarper → TopPLogitsWarper, generation/logits_process.py): top-p acts on the
// temperature-scaled, top-k-filtered distribution. Two deliberate differences: top-k keeps exactly
// k tokens (ties at the k-th logit go to the lower id; torch keeps every tied token), and every
// ranking uses the total order (−logit, id), so equal logits never make the result depend on a
// sort's stability.
//
// Determinism: the CDF is walked in a fixed order — token-id order without filters, (−logit, id)
// order with them — and its partial sums are accumulated in Double in a fixed association
// (blocks of 64 in order, sequential within a block), so the choice is a pure function of
// (logits, settings, u).

import Foundation
import Kernels

/// Picks tokens from logit rows. Holds [V] scratch, so use one selector per thread.
public final class TokenSelector {
    /// Logits per row (V).
    public let vocabSize: Int
    private let weights: UnsafeMutablePointer<Float>    // [V] exp((l − max) / T)
    private let order: UnsafeMutablePointer<Int32>      // [V] candidate ids, ranked
    private let blockSums: UnsafeMutablePointer<Double> // [V / 64 + 1]
    private static let block = 64
    /// After a `select` at temperature 1: log Σ exp(logits), computed exactly as
    /// `logSoftmaxGatherForward` computes it (same max, same exponentials, same summation), so the
    /// caller can reuse it for the token's log-probability; nil after any other selection.
    public private(set) var logSumExp: Float? = nil

    /// Allocates the scratch for rows of `vocabSize` logits.
    public init(vocabSize: Int) {
        require(vocabSize >= 1, "token selection needs a vocabulary of at least one token")
        self.vocabSize = vocabSize
        weights = .allocate(capacity: vocabSize)
        weights.initialize(repeating: 0, count: vocabSize)
        order = .allocate(capacity: vocabSize)
        order.initialize(repeating: 0, count: vocabSize)
        blockSums = .allocate(capacity: vocabSize / Self.block + 1)
        blockSums.initialize(repeating: 0, count: vocabSize / Self.block + 1)
    }

    deinit {
        weights.deallocate()
        order.deallocate()
        blockSums.deallocate()
    }

    /// The token chosen from `logits` [V] with uniform draw `u` ∈ [0, 1), or nil when the row
    /// has no finite maximum or a NaN (a broken model).
    ///
    /// temperature 0: argmax, ties to the lowest id (`u` unused). Otherwise token i has weight
    /// exp((l_i − max l) / T); top-k keeps the k best by (−logit, id); top-p then keeps the
    /// shortest prefix of that ranking whose weight reaches topP of the kept total; the result is
    /// the first candidate (in id order without filters, ranked order with them) whose cumulative
    /// weight exceeds u × total.
    public func select(_ logits: UnsafePointer<Float>, temperature: Float, topK: Int, topP: Float, uniform u: Float)
        -> Int32?
    {
        let V = vocabSize
        logSumExp = nil
        if temperature == 0 { return argmax(logits) }
        let m = vmax(logits, V)
        guard m.isFinite else { return nil }
        if temperature == 1 {
            logSumExp = m + logf(vexpShifted(weights, logits, m, V))
        } else {
            let inv = 1 / temperature
            for i in 0..<V { weights[i] = (logits[i] - m) * inv }
            _ = vexpShifted(weights, weights, 0, V)
        }
        let useK = topK > 0 && topK < V
        if !useK && topP >= 1 {
            return walkIDOrder(uniform: u)
        }
        var count: Int
        if useK {
            count = rankTopK(logits, topK)
        } else {
            // Top-p alone: tokens lighter than (1 − p)/V of the total together weigh less than
            // (1 − p), so the nucleus lies within the rest; rank only those.
            let total = sumIDOrder()
            guard total.isFinite else { return nil }
            let floor = Double(1 - topP) / Double(V) * total
            count = 0
            for i in 0..<V where Double(weights[i]) >= floor { order[count] = Int32(i); count += 1 }
            rank(count, logits)
            if let cut = nucleus(count, topP: topP, total: total) {
                count = cut
            } else {  // rounding kept the prefix short of the mass: rank everything
                for i in 0..<V { order[i] = Int32(i) }
                rank(V, logits)
                count = nucleus(V, topP: topP, total: total) ?? V
            }
            return walkRanked(count, uniform: u)
        }
        if topP < 1 {
            var kept = 0.0
            for r in 0..<count { kept += Double(weights[Int(order[r])]) }
            count = nucleus(count, topP: topP, total: kept) ?? count
        }
        return walkRanked(count, uniform: u)
    }

    /// argmax with ties to the lowest id; nil for a row holding NaN or no finite maximum.
    public func argmax(_ logits: UnsafePointer<Float>) -> Int32? {
        var best = 0
        var bv = logits[0]
        for i in 0..<vocabSize {
            let v = logits[i]
            if v.isNaN { return nil }
            if v > bv { bv = v; best = i }
        }
        return bv.isFinite ? Int32(best) : nil
    }

    // MARK: Pieces

    /// Σ weights in the fixed association (64-blocks sequential inside, blocks in order).
    private func sumIDOrder() -> Double {
        let V = vocabSize, bs = Self.block
        var b = 0
        // Eight whole blocks at once, one per SIMD lane: each lane adds its block's weights in
        // order from 0, exactly as the scalar loop below, so the sums are the same bits; the eight
        // independent chains just do not wait for each other.
        while (b + 8) * bs <= V {
            let w = weights + b * bs
            var s = SIMD8<Double>(repeating: 0)
            for i in 0..<bs {
                s += SIMD8<Double>(Double(w[i]), Double(w[bs + i]), Double(w[2 * bs + i]), Double(w[3 * bs + i]),
                                   Double(w[4 * bs + i]), Double(w[5 * bs + i]), Double(w[6 * bs + i]), Double(w[7 * bs + i]))
            }
            for j in 0..<8 { blockSums[b + j] = s[j] }
            b += 8
        }
        var lo = b * bs
        while lo < V {
            let hi = min(V, lo + bs)
            var s = 0.0
            for i in lo..<hi { s += Double(weights[i]) }
            blockSums[b] = s
            b += 1; lo = hi
        }
        var total = 0.0
        for k in 0..<b { total += blockSums[k] }
        return total
    }

    /// Inverse CDF in token-id order over all V weights.
    private func walkIDOrder(uniform u: Float) -> Int32? {
        let total = sumIDOrder()
        guard total.isFinite, total > 0 else { return nil }
        let target = Double(u) * total
        let V = vocabSize, bs = Self.block
        var acc = 0.0, b = 0, lo = 0
        while lo < V {
            let hi = min(V, lo + bs)
            if acc + blockSums[b] > target {
                // Inside the block, partial sums restart from 0 as when the block sum was formed,
                // so the last one equals blockSums[b] and the walk always stops in this block.
                var s = 0.0
                for i in lo..<hi {
                    s += Double(weights[i])
                    if acc + s > target { return Int32(i) }
                }
            }
            acc += blockSums[b]
            b += 1; lo = hi
        }
        return nil  // unreachable for finite weights: acc reaches total > target
    }

    /// Inverse CDF over order[0..<count] (same block association as `walkIDOrder`).
    private func walkRanked(_ count: Int, uniform u: Float) -> Int32? {
        let bs = Self.block
        var total = 0.0, b = 0, lo = 0
        while lo < count {
            let hi = min(count, lo + bs)
            var s = 0.0
            for r in lo..<hi { s += Double(weights[Int(order[r])]) }
            blockSums[b] = s
            total += s
            b += 1; lo = hi
        }
        guard total.isFinite, total > 0 else { return nil }
        let target = Double(u) * total
        var acc = 0.0
        b = 0; lo = 0
        while lo < count {
            let hi = min(count, lo + bs)
            if acc + blockSums[b] > target {
                var s = 0.0
                for r in lo..<hi {
                    s += Double(weights[Int(order[r])])
                    if acc + s > target { return order[r] }
                }
            }
            acc += blockSums[b]
            b += 1; lo = hi
        }
        return nil
    }

    /// Length of the shortest prefix of order[0..<count] whose weight reaches topP · total
    /// (nil if rounding leaves the whole prefix short).
    private func nucleus(_ count: Int, topP: Float, total: Double) -> Int? {
        let need = Double(topP) * total
        var acc = 0.0
        for r in 0..<count {
            acc += Double(weights[Int(order[r])])
            if acc >= need { return r + 1 }
        }
        return nil
    }

    /// Sorts order[0..<count] by (−logit, id).
    private func rank(_ count: Int, _ l: UnsafePointer<Float>) {
        var ranked = UnsafeMutableBufferPointer(start: order, count: count)
        ranked.sort { a, b in
            let la = l[Int(a)], lb = l[Int(b)]
            return la > lb || (la == lb && a < b)
        }
    }

    /// Puts the k best ids by (−logit, id) into order[0..<k], ranked; returns k.
    private func rankTopK(_ l: UnsafePointer<Float>, _ k: Int) -> Int {
        let V = vocabSize
        if k > 256 {
            for i in 0..<V { order[i] = Int32(i) }
            rank(V, l)
            return k
        }
        // Insertion into a ranked list of at most k, with a fast reject against its last entry.
        var n = 0
        for i in 0..<V {
            let v = l[i]
            if n == k {
                let lastV = l[Int(order[k - 1])]
                if !(v > lastV) { continue }  // equal logits keep the lower (earlier) id
            }
            var j = min(n, k - 1)
            while j > 0 {
                let pv = l[Int(order[j - 1])]
                if v > pv { order[j] = order[j - 1]; j -= 1 } else { break }
            }
            order[j] = Int32(i)
            if n < k { n += 1 }
        }
        return n
    }
}
