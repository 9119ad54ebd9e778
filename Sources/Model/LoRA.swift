// LoRA adapters (PEFT's `LoraModel`) for the Llama projections: y = x Wᵀ + s · (x Aᵀ) Bᵀ with
// A = lora_A [r, in], B = lora_B [out, r], s = alpha / r (or alpha / √r, rank-stabilised).
//
// The adapter's tensors live in one flat buffer (a `ParameterLayout` of named tensors, in PEFT's
// saved names), so gradients and AdamW moments reuse the model's flat-buffer code. The base model
// is never modified: one base serves the policy (adapter on) and the reference (adapter off).
// Forward and backward products are in LoRAPass.swift; PEFT files in LoRAPEFT.swift.

import Foundation
import Kernels

/// A Llama projection an adapter can target (PEFT's `target_modules` names).
public enum LoRATarget: String, CaseIterable, Sendable, Codable, Comparable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj", gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// The projection group (one sgemm of the base model) this module's output is part of.
    var group: LoRAGroup {
        switch self {
        case .q, .k, .v: .qkv
        case .o: .o
        case .gate, .up: .gateUp
        case .down: .down
        }
    }

    /// `self_attn.q_proj`, `mlp.down_proj`, …
    var modulePath: String { (group == .qkv || group == .o ? "self_attn." : "mlp.") + rawValue }

    public static func < (a: LoRATarget, b: LoRATarget) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Parses PEFT names (`q_proj`, …) and `all-linear`; names the bad entry otherwise.
    public static func parse(_ names: [String], what: String) throws -> [LoRATarget] {
        if names == ["all-linear"] { return allCases }
        var out = Set<LoRATarget>()
        for n in names {
            guard let t = LoRATarget(rawValue: n) else {
                throw ModelError("\(what): unknown target module '\(n)'; use any of \(allCases.map(\.rawValue).joined(separator: ", ")) or all-linear")
            }
            out.insert(t)
        }
        guard !out.isEmpty else { throw ModelError("\(what): target_modules is empty; name at least one projection") }
        return out.sorted()
    }
}

/// The base model's projection sgemms: q/k/v stacked, o, gate/up stacked, down.
enum LoRAGroup: Int, CaseIterable, Sendable { case qkv, o, gateUp, down }

/// Rank, scale and targets of an adapter (PEFT `LoraConfig`, with lora_dropout 0 and bias "none").
public struct LoRAConfig: Sendable, Equatable, Codable {
    /// Rank r.
    public var r: Int
    /// lora_alpha.
    public var alpha: Double
    /// Targeted projections, in layer order (q, k, v, o, gate, up, down).
    public var targets: [LoRATarget]
    /// Rank-stabilised scaling alpha / √r instead of alpha / r.
    public var useRSLoRA: Bool

    public init(r: Int, alpha: Double, targets: [LoRATarget], useRSLoRA: Bool = false) throws {
        guard r >= 1 else { throw ModelError("LoRA rank r must be at least 1, got \(r)") }
        guard alpha.isFinite, alpha > 0 else { throw ModelError("lora_alpha must be a positive number, got \(alpha)") }
        guard !targets.isEmpty else { throw ModelError("LoRA target_modules is empty; name at least one projection") }
        self.r = r; self.alpha = alpha; self.targets = Set(targets).sorted(); self.useRSLoRA = useRSLoRA
    }

    /// s, as PEFT computes it (a Python float, applied to float32 tensors).
    public var scaling: Float { Float(useRSLoRA ? alpha / Double(r).squareRoot() : alpha / Double(r)) }
}

/// One adapted projection: where its A and B live and where its output sits in the group's output.
struct LoRAModule: Sendable {
    /// Position in `LoRAAdapter.modules`.
    let index: Int
    let layer: Int
    let target: LoRATarget
    /// Offsets of lora_A [r, in] and lora_B [out, r] in the adapter buffer.
    let a: Int, b: Int
    let inDim: Int, outDim: Int
    /// First column of this projection in its group's output rows (e.g. k starts at NH·D in qkv).
    let column: Int
}

/// LoRA weights for a model shape: config, flat buffer and the adapted modules.
public final class LoRAAdapter: @unchecked Sendable {
    public let config: LoRAConfig
    /// The base model's shape (the adapter only fits bases of this shape).
    public let modelConfig: LlamaConfig
    /// PEFT tensor names (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`), shapes [r, in] / [out, r].
    public let layout: ParameterLayout
    /// A and B of every module (and, on a reward model, the trained score head).
    public let weights: ParameterBuffer
    /// Offset of the adapter's own score head [1, hidden] in `weights` when the base is a
    /// sequence-classification (reward) model: PEFT's SEQ_CLS task trains `score` beside the
    /// adapter (`modules_to_save`), saved as `base_model.model.score.weight`. nil on a causal LM.
    public let scoreOffset: Int?
    let modules: [LoRAModule]
    /// modules[layer][group], in column order.
    let byGroup: [[[LoRAModule]]]

    /// PEFT's saved key of a module's A or B.
    public static func key(layer: Int, target: LoRATarget, matrix: String) -> String {
        "base_model.model.model.layers.\(layer).\(target.modulePath).lora_\(matrix).weight"
    }

    /// PEFT's saved key of a reward model's score head (a `modules_to_save` module).
    public static let scoreKey = "base_model.model.score.weight"

    /// A zero adapter (a no-op: B = 0) for `model`-shaped bases; `initialize` draws A. On a reward
    /// model (`model.head == .score`) the adapter also holds the score head (`scoreOffset`).
    public init(config: LoRAConfig, model m: LlamaConfig) {
        self.config = config
        self.modelConfig = m
        let C = m.hiddenSize, A = m.attentionWidth, KV = m.numKVHeads * m.headDim, F = m.intermediateSize
        func dims(_ t: LoRATarget) -> (inDim: Int, outDim: Int, column: Int) {
            switch t {
            case .q: (C, A, 0)
            case .k: (C, KV, A)
            case .v: (C, KV, A + KV)
            case .o: (A, C, 0)
            case .gate: (C, F, 0)
            case .up: (C, F, F)
            case .down: (F, C, 0)
            }
        }
        var tensors: [(name: String, shape: [Int])] = []
        var pending: [(Int, LoRATarget, Int, Int, Int)] = []
        for l in 0..<m.numLayers {
            for t in config.targets {
                let d = dims(t)
                tensors.append((Self.key(layer: l, target: t, matrix: "A"), [config.r, d.inDim]))
                tensors.append((Self.key(layer: l, target: t, matrix: "B"), [d.outDim, config.r]))
                pending.append((l, t, d.inDim, d.outDim, d.column))
            }
        }
        if m.head == .score { tensors.append((Self.scoreKey, [1, C])) }
        let layout = ParameterLayout(tensors: tensors)
        self.layout = layout
        scoreOffset = layout.entry(Self.scoreKey)?.offset
        weights = ParameterBuffer(layout: layout)
        let modules = pending.enumerated().map { i, p in
            LoRAModule(index: i, layer: p.0, target: p.1, a: layout.entries[2 * i].offset, b: layout.entries[2 * i + 1].offset,
                       inDim: p.2, outDim: p.3, column: p.4)
        }
        self.modules = modules
        var groups = Array(repeating: Array(repeating: [LoRAModule](), count: LoRAGroup.allCases.count), count: m.numLayers)
        for mod in modules { groups[mod.layer][mod.target.group.rawValue].append(mod) }
        byGroup = groups
    }

    /// PEFT's default initialisation, from seeded streams: every lora_A ~ U(−1/√in, 1/√in)
    /// (`kaiming_uniform_(a=√5)`), every lora_B = 0, so a fresh adapter changes nothing. Element j of
    /// layout entry i is drawn from `Philox(seed:, stream: i)`, independent of threads.
    public func initialize(seed: UInt64) {
        weights.zero()
        for (i, e) in layout.entries.enumerated() where e.name.hasSuffix(".lora_A.weight") {
            let bound = 1 / Float(e.shape[1]).squareRoot()
            let rng = Philox(seed: seed, stream: UInt64(i)), v = weights.view(e)
            for j in 0..<e.count { v[j] = bound * (2 * rng.uniform(UInt64(j)) - 1) }
        }
    }

    /// A reward model's adapter: its score head starts as the base's (PEFT's `ModulesToSaveWrapper`
    /// copies the original module). Nothing to do on a causal LM.
    public func initializeScore(from base: ParameterBuffer) {
        guard let o = scoreOffset else { return }
        (weights.base + o).update(from: base.base + base.layout.head, count: modelConfig.hiddenSize)
    }

    /// Adds s · B·A to every targeted weight of `parameters` (a base of this adapter's shape): PEFT's
    /// `merge_and_unload` (the product B·A first, then times s, then added to W, in float32); a
    /// reward model's score head is replaced by the adapter's.
    public func merge(into parameters: ParameterBuffer) {
        require(parameters.count == ParameterLayout(config: modelConfig).count, "merge: the base does not match the adapter's model shape")
        let delta = FloatPtr.allocate(capacity: largestModule)
        defer { delta.deallocate() }
        for m in modules { addDelta(m, into: parameters.base + weightOffset(m, parameters.layout), scratch: delta) }
        if let o = scoreOffset { (parameters.base + parameters.layout.head).update(from: weights.base + o, count: modelConfig.hiddenSize) }
    }

    /// Floats of the largest module's W (scratch size for `addDelta`).
    var largestModule: Int { max(1, modules.map { $0.inDim * $0.outDim }.max() ?? 0) }

    /// W += s · B·A for module `m`, with `w` its weight W [out, in] (row-major) and `delta` scratch of
    /// `largestModule` floats. Every merge (rondo merge, the sampler's weights) is this arithmetic.
    func addDelta(_ m: LoRAModule, into w: FloatPtr, scratch delta: FloatPtr) {
        let s = config.scaling, r = config.r
        sgemm(.none, .none, m: m.outDim, n: m.inDim, k: r, a: weights.base + m.b, lda: r,
              b: weights.base + m.a, ldb: m.inDim, c: delta, ldc: m.inDim)
        for i in 0..<(m.inDim * m.outDim) { w[i] += delta[i] * s }
    }

    /// An independent copy (e.g. a round's adapter kept as the next round's reference while the
    /// original trains on).
    public func copy() -> LoRAAdapter {
        let c = LoRAAdapter(config: config, model: modelConfig)
        c.weights.base.update(from: weights.base, count: weights.count)
        return c
    }

    /// A copy of `base` with this adapter merged: the weights a sampler decodes with (the base
    /// itself stays as it is, for training and the adapter-off reference).
    public func mergedCopy(of base: ParameterBuffer) -> ParameterBuffer {
        let copy = base.clone()
        merge(into: copy)
        return copy
    }

    /// Offset of a module's base weight W [out, in] in a model buffer.
    func weightOffset(_ m: LoRAModule, _ layout: ParameterLayout) -> Int {
        let o = layout.layers[m.layer]
        switch m.target.group {
        case .qkv: return o.qkv + m.column * m.inDim
        case .o: return o.o
        case .gateUp: return o.gateUp + m.column * m.inDim
        case .down: return o.down
        }
    }
}
