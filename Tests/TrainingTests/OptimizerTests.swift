// AdamW and gradient clipping against torch (oracle cases `adamw`, `clip_grad_norm`), the
// vectorised kernel against its plain-loop twin, thread-count independence, the learning-rate
// schedules against transformers' formulas, and the optimizer-state file round trip.

import Foundation
import Kernels
import Model
import Testing
import TestSupport
@testable import Training

@Suite(.serialized) struct OptimizerTests {
    static let adamw = Oracle.cases["adamw"]!

    static var hyper: AdamWConfig {
        let h = adamw["hyperparameters"]!
        return AdamWConfig(beta1: h["beta1"]!.double!, beta2: h["beta2"]!.double!, eps: h["eps"]!.double!,
                           weightDecay: h["weight_decay"]!.double!)
    }

    /// Runs the oracle's three AdamW steps with the fast kernel, checking params and state after each.
    @Test func adamwMatchesTorchAfterOneAndThreeSteps() {
        let lr = Self.adamw["hyperparameters"]!["lr"]!.double!
        var p = Oracle.floats(Self.adamw["param_init"])
        let grads = Self.adamw["grads"]!.array!.map { Oracle.floats($0) }
        var m = [Float](repeating: 0, count: p.count), v = m
        #expect(p.count == 35 && grads.count == 3)
        for step in 1...3 {
            var g = grads[step - 1]
            p.withUnsafeMutableBufferPointer { pp in g.withUnsafeMutableBufferPointer { gp in
                m.withUnsafeMutableBufferPointer { mp in v.withUnsafeMutableBufferPointer { vp in
                    adamwUpdate(p: pp.baseAddress!, g: gp.baseAddress!, m: mp.baseAddress!, v: vp.baseAddress!, count: 35,
                                scalars: AdamWScalars(config: Self.hyper, step: step, lr: lr), decay: true, gradScale: 1,
                                zeroGradients: false)
                } }
            } }
            let state = Self.adamw["state_after_step"]!["\(step)"]!
            expectClose(p, Oracle.floats(Self.adamw["param_after_step"]!["\(step)"]), 1e-6, "param after step \(step)")
            expectClose(m, Oracle.floats(state["exp_avg"]), 1e-6, "exp_avg after step \(step)")
            expectClose(v, Oracle.floats(state["exp_avg_sq"]), 1e-6, "exp_avg_sq after step \(step)")
            #expect(state["step"]!.int == step)
        }
    }

    /// The vectorised kernel (with its scalar tail) against the Double twin, on an odd length.
    @Test func kernelMatchesPlainLoop() {
        let n = 1000 + 7
        let rng = Philox(seed: 9)
        var p = (0..<n).map { rng.normal(UInt64($0)) }, g = (0..<n).map { rng.normal(UInt64($0 + n)) }
        var m = (0..<n).map { 0.1 * rng.normal(UInt64($0 + 2 * n)) }, v = (0..<n).map { 0.01 * abs(rng.normal(UInt64($0 + 3 * n))) }
        var p2 = p, g2 = g, m2 = m, v2 = v
        let c = AdamWConfig(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1)
        p.withUnsafeMutableBufferPointer { pp in g.withUnsafeMutableBufferPointer { gp in
            m.withUnsafeMutableBufferPointer { mp in v.withUnsafeMutableBufferPointer { vp in
                adamwUpdate(p: pp.baseAddress!, g: gp.baseAddress!, m: mp.baseAddress!, v: vp.baseAddress!, count: n,
                            scalars: AdamWScalars(config: c, step: 4, lr: 3e-3), decay: true, gradScale: 0.5, zeroGradients: true)
            } }
        } }
        p2.withUnsafeMutableBufferPointer { pp in g2.withUnsafeMutableBufferPointer { gp in
            m2.withUnsafeMutableBufferPointer { mp in v2.withUnsafeMutableBufferPointer { vp in
                adamwUpdateNaive(p: pp.baseAddress!, g: gp.baseAddress!, m: mp.baseAddress!, v: vp.baseAddress!, count: n,
                                 config: c, step: 4, lr: 3e-3, decay: true, gradScale: 0.5)
            } }
        } }
        expectClose(p, p2, 1e-6, "params"); expectClose(m, m2, 1e-6, "exp_avg"); expectClose(v, v2, 1e-6, "exp_avg_sq")
        #expect(g.allSatisfy { $0 == 0 }, "zeroGradients clears the gradient buffer")
    }

    @Test func clipGradNormMatchesTorch() {
        for item in Oracle.cases["clip_grad_norm"]!["items"]!.array! {
            let name = item["name"]!.string!
            let parts = item["grads_in"]!.array!.map { Oracle.floats($0) }
            let want = item["grads_out"]!.array!.map { Oracle.floats($0) }
            var a = parts[0], b = parts[1]
            let norm = a.withUnsafeMutableBufferPointer { ap in
                b.withUnsafeMutableBufferPointer { bp in GradientClipping.clipGradients([ap, bp], maxNorm: 1.0) }
            }
            expectClose([norm], Oracle.floats(item["total_norm"]), 1e-6, "\(name): total norm")
            expectClose(a + b, want[0] + want[1], 1e-6, "\(name): clipped gradients")
            if name == "not_clipped" { #expect(a + b == parts[0] + parts[1], "gradients below the limit are unchanged") }
            // The flat-buffer path: norm of one concatenated vector, coefficient folded into the update.
            let flat = parts[0] + parts[1]
            let n2 = flat.withUnsafeBufferPointer { GradientClipping.norm($0.baseAddress!, count: flat.count) }
            expectClose([n2], Oracle.floats(item["total_norm"]), 1e-6, "\(name): flat norm")
            let coef = GradientClipping.coefficient(norm: n2, maxNorm: 1)
            expectClose(flat.map { $0 * coef }, want[0] + want[1], 1e-6, "\(name): flat clip")
        }
    }

    /// AdamW over a real layout: the matrices decay, the norm weights do not; results and the
    /// gradient norm are the same bits with 1 and 2 threads.
    @Test func layoutUpdateIsThreadIndependentAndSkipsNormDecay() throws {
        let config = try TinyTask.config()
        let layout = ParameterLayout(config: config)
        func run(threads: Int) -> (ParameterBuffer, AdamW, Float) {
            Threads.configure(threads)
            defer { Threads.configure(ProcessInfo.processInfo.activeProcessorCount) }
            let p = ModelDirectory.randomInit(config: config, seed: 1)
            let g = ParameterBuffer(layout: layout)
            for i in 0..<g.count { g.base[i] = Philox(seed: 2).normal(UInt64(i)) }
            let opt = AdamW(layout: layout, config: AdamWConfig(beta1: 0.9, beta2: 0.95, weightDecay: 0.5))
            let norm = GradientClipping.norm(g.base, count: g.count)
            opt.update(parameters: p, gradients: g, lr: 0.1, gradScale: GradientClipping.coefficient(norm: norm, maxNorm: 1))
            return (p, opt, norm)
        }
        let (p1, o1, n1) = run(threads: 1), (p2, o2, n2) = run(threads: 2)
        #expect(n1.bitPattern == n2.bitPattern)
        #expect(Array(p1.all) == Array(p2.all) && Array(o1.expAvgSq.all) == Array(o2.expAvgSq.all))
        // Decay check against the plain loop: norm weights with decay off, matrices with it on.
        let start = ModelDirectory.randomInit(config: config, seed: 1)
        for e in layout.entries {
            var pe = Array(start.view(e)), ge = (0..<e.count).map { Philox(seed: 2).normal(UInt64(e.offset + $0)) }
            var m = [Float](repeating: 0, count: e.count), v = m
            pe.withUnsafeMutableBufferPointer { pp in ge.withUnsafeMutableBufferPointer { gp in
                m.withUnsafeMutableBufferPointer { mp in v.withUnsafeMutableBufferPointer { vp in
                    adamwUpdateNaive(p: pp.baseAddress!, g: gp.baseAddress!, m: mp.baseAddress!, v: vp.baseAddress!, count: e.count,
                                     config: AdamWConfig(beta1: 0.9, beta2: 0.95, weightDecay: 0.5), step: 1, lr: 0.1,
                                     decay: e.shape.count >= 2, gradScale: GradientClipping.coefficient(norm: n1, maxNorm: 1))
                } }
            } }
            expectClose(p1.view(e), pe, 1e-6, "\(e.name) (decay \(e.shape.count >= 2))")
        }
    }

    @Test func stateRoundTripsThroughSafetensors() throws {
        let config = try TinyTask.config()
        let layout = ParameterLayout(config: config)
        let p = ModelDirectory.randomInit(config: config, seed: 3)
        let g = ParameterBuffer(layout: layout)
        for i in 0..<g.count { g.base[i] = Philox(seed: 4).normal(UInt64(i)) }
        let opt = AdamW(layout: layout, config: AdamWConfig())
        opt.update(parameters: p, gradients: g, lr: 1e-3)
        opt.update(parameters: p, gradients: g, lr: 1e-3)
        try withTemporaryDirectory { dir in
            try opt.save(to: dir)
            let file = try SafetensorsFile(url: dir.appendingPathComponent("optimizer.safetensors"))
            #expect(file.metadata["step"] == "2")
            #expect(file.names.contains("exp_avg.model.embed_tokens.weight") && file.names.contains("exp_avg_sq.lm_head.weight"))
            #expect(file.names.count == 2 * layout.entries.count)
            let back = try AdamW.load(from: dir, layout: layout, config: AdamWConfig())
            #expect(back.step == 2)
            #expect(Array(back.expAvg.all) == Array(opt.expAvg.all) && Array(back.expAvgSq.all) == Array(opt.expAvgSq.all))
            // A state for another model is refused with the tensor's name.
            var other = config
            other.intermediateSize = 48
            #expect { _ = try AdamW.load(from: dir, layout: ParameterLayout(config: other), config: AdamWConfig()) } throws: {
                "\($0)".contains("gate_proj") && "\($0)".contains("shape")
            }
        }
    }

    /// transformers' `get_scheduler` formulas at a few steps (W = 2 warm-up steps, S = 10 total).
    @Test func schedulesFollowTransformers() {
        func lrs(_ k: LRScheduleKind) -> [Double] {
            let s = LRSchedule(kind: k, peak: 1.0, warmupSteps: 2, totalSteps: 10)
            return (0..<11).map { s.lr(step: $0) }
        }
        #expect(lrs(.constant) == [0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1])
        let lin = lrs(.linear)
        #expect(lin[0] == 0 && lin[1] == 0.5 && lin[2] == 1 && abs(lin[6] - 0.5) < 1e-12 && lin[10] == 0)
        let cos = lrs(.cosine)
        #expect(cos[2] == 1 && abs(cos[6] - 0.5) < 1e-12 && abs(cos[10]) < 1e-12 && abs(cos[4] - 0.5 * (1 + Foundation.cos(Double.pi / 4))) < 1e-12)
        #expect(LRSchedule(kind: .linear, peak: 2, totalSteps: 4).lr(step: 0) == 2, "no warm-up starts at the peak")
    }
}
