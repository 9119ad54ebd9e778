// The GRPO loss of TRL 1.16 (`GRPOTrainer._compute_loss`, `trl/trainer/grpo_trainer.py` lines
// 3020–3290) for every `loss_type`, with its derivative with respect to the per-token log-probs and
// the metrics TRL logs. Formulas and gradients: Tests/Fixtures/grpo/README.md, "GRPO loss".
//
// Shapes: one micro-batch of B rows, each padded to width C; per-token arrays are row-major [B·C].
// l = current log-probs (at the sampling temperature), m = completion mask, A[b] the advantage.
//   x[b,t] = l − l_old (l_old absent: stopgrad(l), so x = 0 and ∂x/∂l = 1)
//   token level r[b,t] = e^x;  sequence level (GSPO) r[b] = e^(Σ_t x m / max(n_b, 1))
//   k3 KL kl = e^(l_ref − l) − (l_ref − l) − 1, × r with use_bias_correction_kl
//   per-token loss p (clip family, cispo, sapo, vespo) + β·kl, aggregated per loss_type.
// Every input at a masked position is ignored. Arithmetic is Double; `min`/`clamp` gradients follow
// PyTorch (ties split evenly, clamp passes the gradient on its closed range).

import Foundation

/// One micro-batch of the GRPO / RLOO losses.
public struct PolicyLossBatch: Sendable {
    /// C: completion positions per row.
    public var width: Int
    /// Current per-token log-probs [B·C] at the config's temperature (the values the gradient is taken of).
    public var logps: [Float]
    /// Completion mask [B·C]: true on every completion token (the final eos included).
    public var mask: [Bool]
    /// Log-probs at generation time [B·C]; nil = on-policy (ratio exactly 1, gradient flows).
    public var oldLogps: [Float]?
    /// Reference log-probs [B·C] at the same temperature; required when beta ≠ 0.
    public var refLogps: [Float]?
    /// One advantage per row [B].
    public var advantages: [Float]
    /// Per-token entropies [B·C] for the `entropy` metric; nil = not logged.
    public var entropies: [Float]?

    public init(width: Int, logps: [Float], mask: [Bool], oldLogps: [Float]? = nil, refLogps: [Float]? = nil,
                advantages: [Float], entropies: [Float]? = nil) {
        self.width = width; self.logps = logps; self.mask = mask; self.oldLogps = oldLogps
        self.refLogps = refLogps; self.advantages = advantages; self.entropies = entropies
    }

    /// Rows B.
    public var rows: Int { advantages.count }
    /// Masked tokens of row b.
    func tokens(_ b: Int) -> Int { (0..<width).reduce(0) { $0 + (mask[b * width + $1] ? 1 : 0) } }

    /// Σ_t f(i) over the masked positions i = b·C + t of each row b, in Double.
    public func maskedRowSums(_ f: (Int) -> Double) -> [Double] {
        (0..<rows).map { b in (0..<width).reduce(0.0) { mask[b * width + $1] ? $0 + f(b * width + $1) : $0 } }
    }

    func check(needsReference: Bool) throws {
        let n = rows * width
        guard width >= 1, logps.count == n, mask.count == n else {
            throw JobError("policy loss: logps and mask must hold \(rows) rows × \(width) positions (\(n)), got \(logps.count) and \(mask.count)")
        }
        for (name, a) in [("old log-probs", oldLogps), ("reference log-probs", refLogps), ("entropies", entropies)] {
            if let a, a.count != n { throw JobError("policy loss: \(name) hold \(a.count) values, expected \(n)") }
        }
        if needsReference && refLogps == nil { throw JobError("policy loss: beta ≠ 0 needs reference log-probs") }
    }
}

/// The normalisers of one micro-batch under gradient accumulation (TRL's trainer state).
public struct PolicyLossScaling: Sendable, Equatable {
    /// Completion tokens of the whole generation batch, summed over processes (TRL `num_items_in_batch`).
    public var numItemsInBatch: Int
    /// Micro-batches per optimizer step (TRL `current_gradient_accumulation_steps`).
    public var gradientAccumulationSteps: Int = 1
    /// Micro-batches per generation batch (TRL `steps_per_generation`; defaults to the accumulation steps).
    public var stepsPerGeneration: Int
    /// Processes (TRL `num_processes`; 1 here).
    public var numProcesses: Int = 1

    public init(numItemsInBatch: Int, gradientAccumulationSteps: Int = 1, stepsPerGeneration: Int? = nil, numProcesses: Int = 1) {
        self.numItemsInBatch = numItemsInBatch; self.gradientAccumulationSteps = gradientAccumulationSteps
        self.stepsPerGeneration = stepsPerGeneration ?? gradientAccumulationSteps; self.numProcesses = numProcesses
    }
}

/// A micro-batch's loss, its gradient and TRL's metrics.
public struct PolicyLossResult: Sendable {
    /// The value `compute_loss` returns (already divided as TRL divides it under accumulation).
    public var loss: Double
    /// ∂loss / ∂logps [B·C], 0 at masked positions.
    public var dLogps: [Float]
    /// TRL's metric names (`kl`, `entropy`, `clip_ratio/…`, `cispo_clip_ratio`, `vespo/phi_seq_mean`), in TRL's order.
    public var metrics: [(String, Double)]
}

/// GRPO's per-token losses and aggregations.
public enum GRPOLoss {
    /// The loss of one micro-batch for `config.lossType` (see the file header).
    public static func compute(_ batch: PolicyLossBatch, scaling: PolicyLossScaling, config: GRPOConfig) throws -> PolicyLossResult {
        try batch.check(needsReference: config.beta != 0)
        let B = batch.rows, C = batch.width
        let sequence = config.importanceSamplingLevel == .sequence
        let n = (0..<B).map(batch.tokens)
        let weight = aggregationWeights(n: n, batch: batch, scaling: scaling, config: config)
        let x = logRatios(batch)
        var loss = 0.0
        var grad = [Double](repeating: 0, count: B * C)
        var kl = [Double](repeating: 0, count: B * C), ratio = [Double](repeating: 1, count: B * C)
        var phi = [Double](repeating: 0, count: B)
        for b in 0..<B {
            let a = Double(batch.advantages[b])
            let rowRatio = exp((0..<C).reduce(0) { $0 + x[b * C + $1] } / Double(max(n[b], 1)))
            phi[b] = vespoWeight(x[(b * C)..<(b * C + C)], advantage: a, config: config)
            var coupling = 0.0  // Σ_t weight · ∂p_t/∂r_b (sequence level)
            if sequence { for t in 0..<C { ratio[b * C + t] = rowRatio } }
            for t in 0..<C where batch.mask[b * C + t] {
                let i = b * C + t, l = Double(batch.logps[i])
                let r = sequence ? rowRatio : exp(x[i])
                ratio[i] = r
                var (p, dpdr, dpdl) = policyTerm(r: r, advantage: a, logp: l, phi: phi[b], config: config)
                if config.beta != 0, let ref = batch.refLogps {
                    let d = Double(ref[i]) - l, k3 = exp(d) - d - 1, dk3 = 1 - exp(d)
                    let bias = config.useBiasCorrectionKL
                    kl[i] = bias ? k3 * r : k3
                    p += config.beta * kl[i]
                    dpdl += config.beta * (bias ? dk3 * r : dk3)
                    if bias { dpdr += config.beta * k3 }
                }
                loss += weight[i] * p
                grad[i] += weight[i] * (dpdl + (sequence ? 0 : dpdr * r))
                coupling += weight[i] * dpdr
            }
            if sequence && n[b] > 0 {
                for t in 0..<C where batch.mask[b * C + t] { grad[b * C + t] += coupling * rowRatio / Double(n[b]) }
            }
        }
        let metrics = lossMetrics(batch, ratio: ratio, kl: kl, phi: phi, n: n, config: config)
        return PolicyLossResult(loss: loss, dLogps: grad.map { Float($0) }, metrics: metrics)
    }

    /// x = l − l_old at masked positions (0 on-policy and at padding).
    static func logRatios(_ batch: PolicyLossBatch) -> [Double] {
        (0..<batch.logps.count).map { i in
            guard batch.mask[i], let old = batch.oldLogps else { return 0 }
            return Double(batch.logps[i]) - Double(old[i])
        }
    }

    /// The coefficient of each token's p in the loss: the loss-type normaliser × m.
    static func aggregationWeights(n: [Int], batch: PolicyLossBatch, scaling s: PolicyLossScaling, config: GRPOConfig) -> [Double] {
        let B = batch.rows, C = batch.width, ga = Double(s.gradientAccumulationSteps)
        let local = Double(max(n.reduce(0, +), 1))
        let global = Double(max(s.numItemsInBatch, 1)) / Double(s.numProcesses) * ga / Double(s.stepsPerGeneration)
        return (0..<(B * C)).map { i in
            guard batch.mask[i] else { return 0 }
            switch config.lossType {
            case .grpo, .sapo: return 1 / Double(max(n[i / C], 1)) / Double(B) / ga
            case .bnpo: return 1 / local / ga
            case .drGRPO: return 1 / Double(B * config.maxCompletionLength) / ga
            case .dapo, .cispo, .vespo: return 1 / global
            case .luspo: return 1 / Double(B) / ga
            }
        }
    }

    /// The policy part of one token's loss: p, ∂p/∂r (through the ratio) and ∂p/∂l (direct).
    static func policyTerm(r: Double, advantage a: Double, logp l: Double, phi: Double, config c: GRPOConfig)
        -> (p: Double, dpdr: Double, dpdl: Double)
    {
        switch c.lossType {
        case .cispo:
            let w = min(r, c.effectiveEpsilonHigh)
            return (-w * a * l, 0, -w * a)
        case .sapo:
            let tau = a > 0 ? c.sapoTemperaturePos : c.sapoTemperatureNeg
            let s = sigmoid(tau * (r - 1))
            return (-s * 4 / tau * a, -4 * s * (1 - s) * a, 0)
        case .vespo:
            return (-phi * a * l, 0, -phi * a)
        case .grpo, .drGRPO, .dapo, .bnpo, .luspo:
            let lo = 1 - c.epsilonLow, hi = 1 + c.effectiveEpsilonHigh
            let clipped = min(max(r, lo), hi)
            var unclipped = r, dUnclipped = 1.0
            if let delta = c.delta {  // torch.clamp(max: delta): the gradient passes on r ≤ delta
                unclipped = min(r, delta)
                dUnclipped = r <= delta ? 1 : 0
            }
            let u = unclipped * a, v = clipped * a
            let du = dUnclipped * a, dv = (lo <= r && r <= hi) ? a : 0
            let dmin = u < v ? du : u > v ? dv : 0.5 * (du + dv)
            return (-min(u, v), -dmin, 0)
        }
    }

    /// VESPO's detached weight φ_b = exp(λ + k S − λ e^S), S = clamp(Σ_t clamp(x, −20, 20), log 1e-8, 20),
    /// λ at least 1e-4; a weight that overflows float32 counts as 0, as TRL's `nan_to_num` makes it.
    static func vespoWeight(_ x: ArraySlice<Double>, advantage a: Double, config c: GRPOConfig) -> Double {
        guard c.lossType == .vespo else { return 0 }
        let s = min(max(x.reduce(0) { $0 + min(max($1, -20), 20) }, log(1e-8)), 20)
        let (k, lam) = a >= 0 ? (c.vespoKPos, max(c.vespoLambdaPos, 1e-4)) : (c.vespoKNeg, max(c.vespoLambdaNeg, 1e-4))
        let phi = exp(lam + k * s - lam * exp(s))
        return Float(phi).isFinite ? phi : 0
    }

    /// TRL's logged metrics of one micro-batch.
    static func lossMetrics(_ batch: PolicyLossBatch, ratio: [Double], kl: [Double], phi: [Double], n: [Int],
                            config c: GRPOConfig) -> [(String, Double)] {
        let B = batch.rows, C = batch.width
        let total = Double(max(n.reduce(0, +), 1))
        func gmm(_ v: (Int) -> Double) -> Double { (0..<(B * C)).reduce(0) { $0 + (batch.mask[$1] ? v($1) : 0) } / total }
        var m: [(String, Double)] = []
        if c.beta != 0 { m.append(("kl", gmm { kl[$0] })) }
        if let e = batch.entropies { m.append(("entropy", gmm { Double(e[$0]) })) }
        let adv = { (i: Int) in batch.advantages[i / C] }
        switch c.lossType {
        case .cispo:
            m.append(("cispo_clip_ratio", gmm { ratio[$0] > c.effectiveEpsilonHigh && adv($0) > 0 ? 1 : 0 }))
        case .vespo:
            m.append(("vespo/phi_seq_mean", phi.reduce(0, +) / Double(max(B, 1))))
        case .sapo:
            break
        case .grpo, .drGRPO, .dapo, .bnpo, .luspo:
            // TRL tests the ratio after the delta cap (`coef_1` is re-assigned by the clamp).
            let capped = { (i: Int) in c.delta.map { min(ratio[i], $0) } ?? ratio[i] }
            let low = { (i: Int) -> Double in capped(i) < 1 - c.epsilonLow && adv(i) < 0 ? 1 : 0 }
            let high = { (i: Int) -> Double in capped(i) > 1 + c.effectiveEpsilonHigh && adv(i) > 0 ? 1 : 0 }
            m += clipMetrics(batch, n: n, sequence: c.importanceSamplingLevel == .sequence, low: low, high: high)
        }
        return m
    }

    /// `clip_ratio/low_mean|high_mean|region_mean|low_min|high_max` from per-token indicators. Token
    /// level: token means, and the min / max over rows of each row's fraction (rows without tokens are
    /// NaN there and skipped, TRL's nanmin). Sequence level: the row's indicator (ratio 1, so 0, for a
    /// row without tokens) for every row, means over rows.
    static func clipMetrics(_ batch: PolicyLossBatch, n: [Int], sequence: Bool, low: (Int) -> Double, high: (Int) -> Double)
        -> [(String, Double)]
    {
        let B = batch.rows, C = batch.width
        var lowRow = [Double](repeating: 0, count: B), highRow = lowRow, regionRow = lowRow
        for b in 0..<B {
            if sequence {
                let i = b * C  // a row's indicator does not depend on the position
                (lowRow[b], highRow[b], regionRow[b]) = (low(i), high(i), max(low(i), high(i)))
                continue
            }
            for t in 0..<C where batch.mask[b * C + t] {
                let l = low(b * C + t) / Double(n[b]), h = high(b * C + t) / Double(n[b])
                lowRow[b] += l; highRow[b] += h; regionRow[b] += max(l, h)
            }
        }
        let rows = sequence ? Array(0..<B) : (0..<B).filter { n[$0] > 0 }
        let tokens = Double(max(n.reduce(0, +), 1))
        func mean(_ s: [Double]) -> Double {
            sequence ? s.reduce(0, +) / Double(max(B, 1)) : (0..<B).reduce(0) { $0 + s[$1] * Double(n[$1]) } / tokens
        }
        let lowMin = rows.map { lowRow[$0] }.min() ?? .nan
        let highMax = rows.map { highRow[$0] }.max() ?? .nan
        return [("clip_ratio/low_mean", mean(lowRow)), ("clip_ratio/high_mean", mean(highRow)),
                ("clip_ratio/region_mean", mean(regionRow)), ("clip_ratio/low_min", lowMin), ("clip_ratio/high_max", highMax)]
    }
}
