// AdamW exactly as `torch.optim.AdamW` (amsgrad=False, maximize=False; the single-tensor and the
// fused CPU paths compute the same formula), on the flat parameter buffer: parameters, gradients
// and both moments share one `ParameterLayout`, so a step is one vectorised loop.
//
// Per element, at step t (1-based), with the learning rate lr of that step:
//   p  = p · (1 − lr·wd)                          decoupled decay first, with the plain lr
//   m  = m + (g − m)·(1 − β1)                      (torch: exp_avg.lerp_(g, 1 − β1))
//   v  = v·β2 + (1 − β2)·g·g                       (torch: exp_avg_sq.mul_(β2).addcmul_(g, g, 1 − β2))
//   p  = p − (lr / (1 − β1ᵗ)) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + ε)   ε after the bias correction
// Scalars are computed in Double and rounded to Float once, as torch does with Python scalars.
//
// Weight decay follows the HF Trainer's parameter groups: matrices decay, RMSNorm weights (1-D)
// do not (transformers' `get_decay_parameter_names` excludes norms and biases).
//
// The state is saved beside the weights as `optimizer.safetensors`: tensors `exp_avg.<name>` and
// `exp_avg_sq.<name>` for every layout entry (HF shapes) and the step in the metadata. The moments
// are F32, or BF16 when the caller keeps them in bfloat16 (`MomentsDType.bf16`: the in-memory
// moments are rounded to nearest even first, so what continues in memory is what was written);
// loading reads either.

import Foundation
import Kernels
import Model

/// AdamW hyper-parameters other than the learning rate (which the schedule supplies).
public struct AdamWConfig: Codable, Sendable, Equatable {
    /// β1, the first-moment decay.
    public var beta1: Double = 0.9
    /// β2, the second-moment decay.
    public var beta2: Double = 0.999
    /// ε, added to the bias-corrected sqrt(v).
    public var eps: Double = 1e-8
    /// Decoupled weight decay λ (applied as p · (1 − lr·λ)).
    public var weightDecay: Double = 0

    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    /// Rejects values torch would reject.
    public func validate() throws {
        guard (0..<1).contains(beta1), (0..<1).contains(beta2) else {
            throw JobError("AdamW betas must be in [0, 1), got (\(beta1), \(beta2))")
        }
        guard eps >= 0, weightDecay >= 0 else { throw JobError("AdamW eps and weight decay must be ≥ 0") }
    }
}

/// The per-step scalars of one AdamW update, rounded to Float as torch applies them.
public struct AdamWScalars: Sendable {
    let decay: Float, oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float
    let bc2Sqrt: Float, eps: Float, negStepSize: Float

    /// The scalars of step `step` (1-based) at learning rate `lr`.
    public init(config c: AdamWConfig, step: Int, lr: Double) {
        let bc1 = 1 - pow(c.beta1, Double(step))
        let bc2 = 1 - pow(c.beta2, Double(step))
        decay = Float(1 - lr * c.weightDecay)
        oneMinusBeta1 = Float(1 - c.beta1)
        beta2 = Float(c.beta2)
        oneMinusBeta2 = Float(1 - c.beta2)
        bc2Sqrt = Float(bc2.squareRoot())
        eps = Float(c.eps)
        negStepSize = Float(-(lr / bc1))
    }
}

/// One AdamW update of `count` floats (vectorised). `g` is read as `g · gradScale` (the clipping
/// coefficient, so clipping needs no separate pass); `zeroGradients` clears `g` after reading it.
/// Each element is computed independently, so any split over threads gives the same bits.
@inline(__always)
public func adamwUpdate(
    p: FloatPtr, g: FloatPtr, m: FloatPtr, v: FloatPtr, count n: Int, scalars s: AdamWScalars,
    decay: Bool, gradScale: Float, zeroGradients: Bool
) {
    @inline(__always) func load(_ q: FloatPtr) -> SIMD16<Float> { UnsafeRawPointer(q).loadUnaligned(as: SIMD16<Float>.self) }
    @inline(__always) func store(_ x: SIMD16<Float>, _ q: FloatPtr) { UnsafeMutableRawPointer(q).storeBytes(of: x, as: SIMD16<Float>.self) }
    let dec: Float = decay ? s.decay : 1
    var i = 0
    while i + 16 <= n {
        var pv = load(p + i)
        let gv = load(g + i) * gradScale
        var mv = load(m + i), vv = load(v + i)
        if decay { pv = pv * dec }
        mv = mv + (gv - mv) * s.oneMinusBeta1
        vv = vv * s.beta2
        vv = vv + s.oneMinusBeta2 * gv * gv
        let denom = vv.squareRoot() / s.bc2Sqrt + s.eps
        pv = pv + s.negStepSize * (mv / denom)
        store(pv, p + i); store(mv, m + i); store(vv, v + i)
        if zeroGradients { store(SIMD16<Float>(), g + i) }
        i += 16
    }
    while i < n {
        var pv = p[i]
        let gv = g[i] * gradScale
        if decay { pv = pv * dec }
        let mv = m[i] + (gv - m[i]) * s.oneMinusBeta1
        var vv = v[i] * s.beta2
        vv = vv + s.oneMinusBeta2 * gv * gv
        let denom = vv.squareRoot() / s.bc2Sqrt + s.eps
        p[i] = pv + s.negStepSize * (mv / denom)
        m[i] = mv; v[i] = vv
        if zeroGradients { g[i] = 0 }
        i += 1
    }
}

/// Plain-loop twin of `adamwUpdate` in Double (test oracle): the same formula without rounding
/// the intermediate values.
public func adamwUpdateNaive(
    p: FloatPtr, g: FloatPtr, m: FloatPtr, v: FloatPtr, count n: Int, config c: AdamWConfig, step: Int, lr: Double,
    decay: Bool, gradScale: Float = 1
) {
    let bc1 = 1 - pow(c.beta1, Double(step)), bc2 = 1 - pow(c.beta2, Double(step))
    for i in 0..<n {
        let gi = Double(g[i]) * Double(gradScale)
        var pi = Double(p[i])
        if decay { pi *= 1 - lr * c.weightDecay }
        let mi = c.beta1 * Double(m[i]) + (1 - c.beta1) * gi
        let vi = c.beta2 * Double(v[i]) + (1 - c.beta2) * gi * gi
        pi -= lr / bc1 * mi / (vi.squareRoot() / bc2.squareRoot() + c.eps)
        p[i] = Float(pi); m[i] = Float(mi); v[i] = Float(vi)
    }
}

/// How AdamW's moments are stored between rounds: float32 (exact), or rounded to bfloat16 (half
/// the bytes, as bitsandbytes' and DeepSpeed's 16-bit optimizer states).
public enum MomentsDType: String, Codable, Sendable, CaseIterable {
    case f32, bf16

    /// The safetensors dtype the moments are written in.
    public var safetensors: SafetensorsDType { self == .bf16 ? .bf16 : .f32 }
}

/// `x` rounded to the nearest bfloat16 (ties to even), as a float32: finite values keep 8 mantissa
/// bits (those beyond bfloat16's largest finite value become ±inf), ±inf stays, NaN stays NaN.
@inline(__always)
public func roundedToBF16(_ x: Float) -> Float { Float(bitPattern: UInt32(HalfFloat.bf16Bits(x)) << 16) }

/// AdamW state (first and second moments, step count) for a model's flat parameter buffer.
public final class AdamW: @unchecked Sendable {
    /// The state file written beside the weights.
    public static let fileName = "optimizer.safetensors"
    /// Floats per Dispatch task of the update loop (fixed, so the work split is the same everywhere).
    static let chunk = 1 << 16

    /// β1, β2, ε and weight decay.
    public let config: AdamWConfig
    /// m (`exp_avg`), same layout as the parameters.
    public let expAvg: ParameterBuffer
    /// v (`exp_avg_sq`), same layout as the parameters.
    public let expAvgSq: ParameterBuffer
    /// Updates applied so far (torch's `state["step"]`).
    public private(set) var step: Int = 0
    /// Work units of the update loop: fixed chunks of the buffer, each with or without weight decay.
    let units: [(lo: Int, hi: Int, decay: Bool)]

    /// HF Trainer parameter groups: every matrix decays, 1-D tensors (RMSNorm weights) do not.
    public static func hfDecays(_ e: ParameterEntry) -> Bool { e.shape.count >= 2 }

    /// Fresh state (zero moments, step 0) for parameters laid out by `layout`.
    public init(layout: ParameterLayout, config: AdamWConfig, decays: (ParameterEntry) -> Bool = AdamW.hfDecays) {
        self.config = config
        expAvg = ParameterBuffer(layout: layout)
        expAvgSq = ParameterBuffer(layout: layout)
        var segs: [(range: Range<Int>, decay: Bool)] = []
        for e in layout.entries.sorted(by: { $0.offset < $1.offset }) {
            let d = config.weightDecay != 0 && decays(e)
            if let last = segs.last, last.decay == d, last.range.upperBound == e.offset {
                segs[segs.count - 1].range = last.range.lowerBound..<(e.offset + e.count)
            } else {
                segs.append((e.offset..<(e.offset + e.count), d))
            }
        }
        var units: [(lo: Int, hi: Int, decay: Bool)] = []
        for seg in segs {
            var lo = seg.range.lowerBound
            while lo < seg.range.upperBound {
                let hi = min(seg.range.upperBound, lo + Self.chunk)
                units.append((lo, hi, seg.decay))
                lo = hi
            }
        }
        self.units = units
    }

    /// Applies one update at learning rate `lr` with gradients scaled by `gradScale` (the clipping
    /// coefficient). With `zeroGradients`, the gradient buffer is left zeroed for the next step.
    public func update(parameters: ParameterBuffer, gradients: ParameterBuffer, lr: Double, gradScale: Float = 1,
                       zeroGradients: Bool = false) {
        require(parameters.count == expAvg.count && gradients.count == expAvg.count, "layouts differ")
        step += 1
        let s = AdamWScalars(config: config, step: step, lr: lr)
        let units = self.units
        let p = parameters.base, g = gradients.base, m = expAvg.base, v = expAvgSq.base
        parallelRows(units.count, minRowsPerTask: 1) { r in
            for u in units[r] {
                adamwUpdate(p: p + u.lo, g: g + u.lo, m: m + u.lo, v: v + u.lo, count: u.hi - u.lo, scalars: s,
                            decay: u.decay, gradScale: gradScale, zeroGradients: zeroGradients)
            }
        }
    }

    // MARK: Checkpoint

    /// Rounds both moments in place to bfloat16 (`roundedToBF16`), so the state in memory is the
    /// state a BF16 file holds.
    public func roundMomentsToBF16() {
        for buffer in [expAvg, expAvgSq] {
            let q = buffer.base, n = buffer.count, chunk = Self.chunk
            parallelRows((n + chunk - 1) / chunk, minRowsPerTask: 1) { r in
                for i in (r.lowerBound * chunk)..<min(n, r.upperBound * chunk) { q[i] = roundedToBF16(q[i]) }
            }
        }
    }

    /// Writes `optimizer.safetensors` (or `fileName`) into `dir` (atomically). With `moments: .bf16`
    /// the moments are first rounded in memory (`roundMomentsToBF16`), then written as BF16.
    public func save(to dir: URL, fileName: String = AdamW.fileName, moments: MomentsDType = .f32) throws {
        if moments == .bf16 { roundMomentsToBF16() }
        let layout = expAvg.layout
        var tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] = []
        for e in layout.entries {
            tensors.append(("exp_avg." + e.name, e.shape, UnsafeBufferPointer(expAvg.view(e))))
            tensors.append(("exp_avg_sq." + e.name, e.shape, UnsafeBufferPointer(expAvgSq.view(e))))
        }
        let meta = [
            "format": "rondo-adamw", "version": "1", "step": String(step),
            "beta1": String(config.beta1), "beta2": String(config.beta2), "eps": String(config.eps),
            "weight_decay": String(config.weightDecay),
        ]
        try SafetensorsFile.write(tensors, dtype: moments.safetensors, to: dir.appendingPathComponent(fileName), metadata: meta)
    }

    /// The dtype of the moments in a state file written by `save` (nil if `dir` has none).
    public static func storedMoments(in dir: URL, fileName: String = AdamW.fileName) throws -> MomentsDType? {
        let url = dir.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let file = try SafetensorsFile(url: url)
        return file.names.first.flatMap { file.info($0)?.dtype == .bf16 ? .bf16 : .f32 }
    }

    /// Reads the state saved by `save` from `dir` (F32 or BF16 moments), strictly matched against `layout`.
    public static func load(from dir: URL, fileName: String = AdamW.fileName, layout: ParameterLayout, config: AdamWConfig,
                            decays: (ParameterEntry) -> Bool = AdamW.hfDecays) throws -> AdamW {
        let url = dir.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw JobError("\(url.path): no optimizer state; --resume needs a directory written by a Rondo training run")
        }
        let file = try SafetensorsFile(url: url)
        guard file.metadata["format"] == "rondo-adamw" else {
            throw JobError("\(url.path): not a Rondo AdamW state (metadata format '\(file.metadata["format"] ?? "none")', expected 'rondo-adamw')")
        }
        guard let s = file.metadata["step"].flatMap(Int.init), s >= 0 else {
            throw JobError("\(url.path): metadata 'step' is missing or not a non-negative integer")
        }
        let opt = AdamW(layout: layout, config: config, decays: decays)
        var expected = Set<String>()
        for e in layout.entries {
            for (prefix, buf) in [("exp_avg.", opt.expAvg), ("exp_avg_sq.", opt.expAvgSq)] {
                let name = prefix + e.name
                expected.insert(name)
                guard let info = file.info(name) else {
                    throw JobError("\(url.path): tensor '\(name)' is missing; the optimizer state does not match the model")
                }
                guard info.shape == e.shape else {
                    throw JobError("\(url.path): tensor '\(name)' has shape \(info.shape), expected \(e.shape)")
                }
                try file.read(name, into: buf.view(e))
            }
        }
        if let extra = file.names.first(where: { !expected.contains($0) }) {
            throw JobError("\(url.path): unexpected tensor '\(extra)'; the optimizer state does not match the model")
        }
        opt.step = s
        return opt
    }
}
