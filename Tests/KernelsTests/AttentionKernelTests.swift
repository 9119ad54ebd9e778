// The decoder's attention kernels bit for bit: each variant this CPU runs against a plain loop
// with the same reduction order (one fused multiply-add chain per output, ascending), on group
// sizes, head dimensions and lengths that exercise every head chunk, vector tail and key block,
// with and without the prefetch hints.

import Foundation
import Kernels
import Testing

/// The bits of `a` and `b` are identical (NaNs included: a NaN only equals the same NaN pattern).
private func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// key(p, e) of the blocked key layout.
private func keyIndex(_ p: Int, _ e: Int, d: Int) -> Int {
    let b = DecodeKernel.keyBlock
    return (p / b) * b * d + e * b + p % b
}

@Suite struct AttentionKernelTests {
    @Test(arguments: DecodeKernel.allCases.filter(\.isAvailable))
    func matchesReferenceLoops(kernel: DecodeKernel) {
        var mismatches: [String] = []
        for heads in [1, 3, 4, 5, 9] {
            for d in [1, 7, 16, 32, 33, 64, 80] {
                for len in [1, 2, 15, 16, 17, 40] {
                    let seed = UInt64(heads * 10_000 + d * 100 + len)
                    let padded = (len + 15) / 16 * 16
                    let q = randomArray(heads * d, seed: seed)
                    // Positions past len hold NaN: a kernel that read or used them would show it.
                    var keys = [Float](repeating: .nan, count: padded * d)
                    let logical = randomArray(len * d, seed: seed + 1)
                    for p in 0..<len { for e in 0..<d { keys[keyIndex(p, e, d: d)] = logical[p * d + e] } }
                    let lds = len + 3, scale: Float = 0.125
                    var expected = [Float](repeating: -1, count: heads * lds), got = expected
                    for h in 0..<heads {
                        for p in 0..<len {
                            var acc: Float = 0
                            for e in 0..<d { acc = acc.addingProduct(q[h * d + e], logical[p * d + e]) }
                            expected[h * lds + p] = acc * scale
                        }
                    }
                    let probs = randomArray(heads * lds, seed: seed + 2), values = randomArray(len * d, seed: seed + 3)
                    kernel.attentionScores(heads: heads, d: d, len: len, q: q, keys: keys, scale: scale, scores: &got,
                                           lds: lds)
                    if !sameBits(got, expected) { mismatches.append("scores heads \(heads) d \(d) len \(len)") }
                    // The prefetch hint (the values read next) changes nothing.
                    var hinted = [Float](repeating: -1, count: heads * lds)
                    kernel.attentionScores(heads: heads, d: d, len: len, q: q, keys: keys, scale: scale,
                                           scores: &hinted, lds: lds, values: values)
                    if !sameBits(hinted, expected) {
                        mismatches.append("hinted scores heads \(heads) d \(d) len \(len)")
                    }

                    var out = [Float](repeating: -1, count: heads * d), ref = out
                    for h in 0..<heads {
                        for e in 0..<d {
                            var acc: Float = 0
                            for j in 0..<len { acc = acc.addingProduct(probs[h * lds + j], values[j * d + e]) }
                            ref[h * d + e] = acc
                        }
                    }
                    kernel.attentionValues(heads: heads, d: d, len: len, p: probs, ldp: lds, values: values, out: &out)
                    if !sameBits(out, ref) { mismatches.append("values heads \(heads) d \(d) len \(len)") }
                    var hintedOut = [Float](repeating: -1, count: heads * d)
                    kernel.attentionValues(heads: heads, d: d, len: len, p: probs, ldp: lds, values: values,
                                           out: &hintedOut, then: keys)
                    if !sameBits(hintedOut, ref) { mismatches.append("hinted values heads \(heads) d \(d) len \(len)") }
                }
            }
        }
        #expect(mismatches.isEmpty, "\(kernel): \(mismatches.count) cases differ, first \(mismatches.prefix(5))")
    }
}
