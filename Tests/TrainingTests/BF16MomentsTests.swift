// AdamW moments kept in bfloat16 between rounds (docs/lora.md, "Round checkpoints"): the rounding
// against hand values (ties, subnormals, overflow, ±inf, NaN) and against a plain reference that
// picks the nearer of the two neighbouring bfloat16 values in Double; a BF16 state file holds
// exactly the rounded in-memory moments, so continuing in memory and continuing after a reload
// give the same bits; an F32 state file still loads.

import Foundation
import Kernels
import Model
import Testing
import TestSupport
@testable import Training

@Suite struct BF16MomentsTests {
    /// Plain reference: the two bfloat16 values around `x` (truncation and the next one up in
    /// magnitude), the nearer in exact Double arithmetic, a tie going to the even mantissa.
    static func reference(_ x: Float) -> Float {
        if x.isNaN || x.isInfinite { return x }
        let low = Float(bitPattern: x.bitPattern & 0xFFFF_0000)
        let lowBits = low.bitPattern >> 16
        let high = Float(bitPattern: (lowBits + 1) << 16)  // ±inf past the largest finite value
        // Past the largest finite value, the next step is ±2¹²⁸ (IEEE rounds to inf from there).
        let highValue = high.isInfinite ? (x.sign == .minus ? -0x1p128 : 0x1p128) : Double(high)
        let dLow = abs(Double(x) - Double(low)), dHigh = abs(highValue - Double(x))
        if dLow < dHigh { return low }
        if dHigh < dLow { return high }
        return lowBits & 1 == 0 ? low : high
    }

    @Test func roundingMatchesHandValues() {
        let cases: [(Float, Float)] = [
            (1, 1), (-0.0, -0.0), (0, 0),
            (1 + 0x1p-8, 1),                         // tie between 1 and 1 + 2⁻⁷: to even (1)
            (1 + 3 * 0x1p-8, 1 + 0x1p-6),            // tie between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶: to even
            (1 + 0x1p-8 + 0x1p-20, 1 + 0x1p-7),      // just above the tie: up
            (-(1 + 0x1p-8 + 0x1p-20), -(1 + 0x1p-7)),
            (1 + 0x1p-8 - 0x1p-20, 1),               // just below the tie: down
            (0x1p-133, 0x1p-133),                    // bfloat16's smallest subnormal: exact
            (0x1.8p-133, 0x1p-132),                  // tie between subnormals 1 (odd) and 2: to even
            (0x1p-149, 0),                           // float32's smallest subnormal: below half of 2⁻¹³³
            (Float.leastNormalMagnitude, Float.leastNormalMagnitude),
            (Float.greatestFiniteMagnitude, .infinity),  // past bfloat16's largest finite value
            (0x1.fep127, 0x1.fep127),                // bfloat16's largest finite value
            (.infinity, .infinity), (-.infinity, -.infinity),
        ]
        for (x, want) in cases {
            let got = roundedToBF16(x)
            #expect(got.bitPattern == want.bitPattern, "\(x): got \(got), want \(want)")
            #expect(Self.reference(x).bitPattern == want.bitPattern, "reference at \(x)")
        }
        for nan in [Float.nan, -Float.nan, Float(bitPattern: 0x7F80_0001), Float.signalingNaN] {
            #expect(roundedToBF16(nan).isNaN, "\(nan.bitPattern)")
        }
    }

    /// Every kind of float32 bit pattern (counter-based random draws over the whole range, plus the
    /// patterns just around each rounding boundary) against the reference.
    @Test func roundingMatchesPlainReference() {
        let rng = Philox(seed: 20)
        var patterns: [UInt32] = (0..<200_000).map { rng.block(UInt64($0)).0 }
        for hi in stride(from: UInt32(0), to: 0xFFFF, by: 97) {
            for lo: UInt32 in [0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF] { patterns.append(hi << 16 | lo) }
        }
        var mismatches = 0
        for b in patterns {
            let x = Float(bitPattern: b)
            let got = roundedToBF16(x), want = Self.reference(x)
            if x.isNaN { if !got.isNaN { mismatches += 1 }; continue }
            if got.bitPattern != want.bitPattern { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(mismatches) of \(patterns.count) patterns differ from the reference")
    }

    /// A BF16 save rounds the moments in memory to what the file holds: a step after `save` equals
    /// a step after `load`, bit for bit. An F32 state (an older LoRA round) still loads.
    @Test func bf16StateContinuesInMemoryAsAfterReload() throws {
        let config = try TinyTask.config()
        let layout = ParameterLayout(config: config)
        let grads = ParameterBuffer(layout: layout)
        for i in 0..<grads.count { grads.base[i] = Philox(seed: 4).normal(UInt64(i)) }
        let p = ModelDirectory.randomInit(config: config, seed: 3)
        let opt = AdamW(layout: layout, config: AdamWConfig())
        opt.update(parameters: p, gradients: grads, lr: 1e-3)
        let unrounded = Array(opt.expAvgSq.all)
        try withTemporaryDirectory { dir in
            try opt.save(to: dir, moments: .bf16)
            let file = try SafetensorsFile(url: dir.appendingPathComponent(AdamW.fileName))
            #expect(file.names.allSatisfy { file.info($0)?.dtype == .bf16 })
            #expect(try AdamW.storedMoments(in: dir) == .bf16)
            #expect(Array(opt.expAvgSq.all) == unrounded.map(roundedToBF16), "the moments in memory are the rounded ones")
            #expect(Array(opt.expAvgSq.all) != unrounded, "rounding changed some moments")
            let back = try AdamW.load(from: dir, layout: layout, config: AdamWConfig())
            #expect(back.step == 1 && Array(back.expAvg.all) == Array(opt.expAvg.all) && Array(back.expAvgSq.all) == Array(opt.expAvgSq.all))
            let p2 = p.clone()
            opt.update(parameters: p, gradients: grads, lr: 1e-3)
            back.update(parameters: p2, gradients: grads, lr: 1e-3)
            #expect(Array(p.all) == Array(p2.all) && Array(opt.expAvgSq.all) == Array(back.expAvgSq.all))

            // F32 moments (the format of every state before BF16 moments) load unchanged.
            let f32 = dir.appendingPathComponent("f32")
            try FileManager.default.createDirectory(at: f32, withIntermediateDirectories: true)
            try opt.save(to: f32)
            #expect(try AdamW.storedMoments(in: f32) == .f32)
            let old = try AdamW.load(from: f32, layout: layout, config: AdamWConfig())
            #expect(old.step == 2 && Array(old.expAvgSq.all) == Array(opt.expAvgSq.all))
            #expect(try AdamW.storedMoments(in: dir.appendingPathComponent("none")) == nil)
        }
    }

    /// A NaN or infinite moment stays so through the BF16 round trip (the update gate still sees it).
    @Test func nonFiniteMomentsStayNonFinite() throws {
        let layout = ParameterLayout(config: try TinyTask.config())
        let opt = AdamW(layout: layout, config: AdamWConfig())
        opt.expAvg.base[0] = .nan; opt.expAvg.base[1] = .infinity; opt.expAvgSq.base[2] = -.infinity
        try withTemporaryDirectory { dir in
            try opt.save(to: dir, moments: .bf16)
            let back = try AdamW.load(from: dir, layout: layout, config: AdamWConfig())
            #expect(back.expAvg.base[0].isNaN && back.expAvg.base[1] == .infinity && back.expAvgSq.base[2] == -.infinity)
        }
    }
}
