// The token-selection function against the distribution it should sample: 20,000 seeded draws
// from fixed logits, compared with softmax(logits / T) by a chi-square test; top-k / top-p never
// leave their allowed set; greedy ties go to the lowest id.

import Foundation
import Kernels
import Sampling
import Testing

extension SamplingTests {
    @Suite struct SelectionStatistics {
        static let draws = 20_000

        /// Chi-square bound at p = 1e-5 (Wilson–Hilferty): a correct sampler exceeds it once in
        /// 100,000 seeds; a wrong temperature, filter or CDF walk gives values in the hundreds+.
        func chiSquareBound(df: Int) -> Double {
            let d = Double(df), z = 4.265
            return d * pow(1 - 2 / (9 * d) + z * (2 / (9 * d)).squareRoot(), 3)
        }

        /// Draws `draws` tokens with uniforms from Philox(seed, stream).
        func counts(_ logits: [Float], temperature: Float, topK: Int = 0, topP: Float = 1, stream: UInt64) -> [Int] {
            let sel = TokenSelector(vocabSize: logits.count)
            let rng = Philox(seed: 31, stream: stream)
            var c = [Int](repeating: 0, count: logits.count)
            logits.withUnsafeBufferPointer { l in
                for i in 0..<Self.draws {
                    let t = sel.select(l.baseAddress!, temperature: temperature, topK: topK, topP: topP,
                                       uniform: rng.uniform(UInt64(i)))!
                    c[Int(t)] += 1
                }
            }
            return c
        }

        /// softmax(logits / T) restricted to `allowed` and renormalised, in Double.
        func expected(_ logits: [Float], temperature: Float, allowed: Set<Int>) -> [Double] {
            let m = allowed.map { Double(logits[$0]) }.max()!
            var p = logits.indices.map { allowed.contains($0) ? Foundation.exp((Double(logits[$0]) - m) / Double(temperature)) : 0 }
            let z = p.reduce(0, +)
            for i in p.indices { p[i] /= z }
            return p
        }

        func expectMatches(_ counts: [Int], _ p: [Double], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let n = Double(counts.reduce(0, +))
            var chi2 = 0.0, df = -1
            var worst = 0.0
            for (c, pi) in zip(counts, p) {
                if pi == 0 {
                    #expect(c == 0, "\(what): a token outside the allowed set was drawn", sourceLocation: sourceLocation)
                    continue
                }
                let e = n * pi
                chi2 += (Double(c) - e) * (Double(c) - e) / e
                df += 1
                worst = max(worst, abs(Double(c) - e) / (e * (1 - pi)).squareRoot())
            }
            let bound = chiSquareBound(df: max(1, df))
            #expect(chi2 < bound, "\(what): chi-square \(chi2) ≥ \(bound) (df \(df))", sourceLocation: sourceLocation)
            #expect(worst < 5, "\(what): a token frequency is \(worst) standard deviations off", sourceLocation: sourceLocation)
        }

        let small: [Float] = [1.2, -0.3, 0.8, 2.1, -1.5, 0.0, 1.9, -0.7, 0.4, 2.0, -2.5, 1.1]

        /// 300 logits ~ N(0, 1.2²) (several 64-token blocks of the CDF walk).
        var wide: [Float] {
            let rng = Philox(seed: 5, stream: 5)
            return (0..<300).map { 1.2 * rng.normal(UInt64($0)) }
        }

        @Test(arguments: [Float(1), 0.7, 1.6])
        func frequenciesMatchSoftmax(_ temperature: Float) {
            let all = Set(small.indices)
            expectMatches(counts(small, temperature: temperature, stream: 1), expected(small, temperature: temperature, allowed: all),
                          "12 tokens, T \(temperature)")
            let w = wide
            expectMatches(counts(w, temperature: temperature, stream: 2), expected(w, temperature: temperature, allowed: Set(w.indices)),
                          "300 tokens, T \(temperature)")
        }

        /// The k best by (−logit, id), computed independently.
        func topKSet(_ l: [Float], _ k: Int) -> [Int] {
            Array(l.indices.sorted { l[$0] > l[$1] || (l[$0] == l[$1] && $0 < $1) }.prefix(k))
        }

        /// The shortest (−logit, id)-ranked prefix of `ranked` whose softmax(l/T) mass reaches p.
        func nucleus(_ l: [Float], _ ranked: [Int], temperature: Float, p: Float) -> [Int] {
            let probs = expected(l, temperature: temperature, allowed: Set(ranked))
            var acc = 0.0
            for (i, t) in ranked.enumerated() {
                acc += probs[t]
                if acc >= Double(p) { return Array(ranked.prefix(i + 1)) }
            }
            return ranked
        }

        @Test func topKAndTopPStayInTheirSet() {
            let w = wide
            for (k, p, T) in [(5, Float(1), Float(1)), (1, 1, 1), (40, 1, 0.8), (0, 0.5, 1), (0, 0.9, 1.3), (50, 0.7, 0.9)] {
                let ranked = k > 0 ? topKSet(w, k) : topKSet(w, w.count)
                let allowed = p < 1 ? nucleus(w, ranked, temperature: T, p: p) : ranked
                let c = counts(w, temperature: T, topK: k, topP: p, stream: 3)
                expectMatches(c, expected(w, temperature: T, allowed: Set(allowed)), "top-k \(k), top-p \(p), T \(T)")
                #expect(Set(c.indices.filter { c[$0] > 0 }).isSubset(of: Set(allowed)))
            }
            // Top-p below the largest probability keeps only the argmax.
            let c = counts(small, temperature: 1, topP: 0.01, stream: 4)
            #expect(c[3] == Self.draws)
        }

        @Test func tiesGoToTheLowestID() {
            let l: [Float] = [1, 3, 3, 2, 3]
            let sel = TokenSelector(vocabSize: l.count)
            l.withUnsafeBufferPointer { b in
                #expect(sel.select(b.baseAddress!, temperature: 0, topK: 0, topP: 1, uniform: 0.5) == 1)
                #expect(sel.argmax(b.baseAddress!) == 1)
                // Top-2 of tied logits keeps ids 1 and 2 (not 4): draws split between them only.
                var seen = Set<Int32>()
                for i in 0..<200 {
                    seen.insert(sel.select(b.baseAddress!, temperature: 1, topK: 2, topP: 1, uniform: Float(i) / 200)!)
                }
                #expect(seen == [1, 2])
            }
            let bad: [Float] = [0, .nan, 1]
            bad.withUnsafeBufferPointer { b in
                let sel = TokenSelector(vocabSize: 3)
                #expect(sel.select(b.baseAddress!, temperature: 1, topK: 0, topP: 1, uniform: 0.3) == nil)
                #expect(sel.select(b.baseAddress!, temperature: 0, topK: 0, topP: 1, uniform: 0.3) == nil)
            }
        }
    }
}
