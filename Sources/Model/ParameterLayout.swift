// One flat float32 buffer for all of a model's parameters, with named views (llm.c style).
//
// Order within a layer: q, k, v (contiguous, so the three form one [(NH+2·NKV)·D, C] matrix
// and run as a single sgemm), o, gate, up (contiguous: one [2F, C] matrix), down, then the two
// norm vectors. Gradients and AdamW moments use the same layout, so zeroing, clipping, the
// optimizer step and copying a reference model are each one loop over one buffer.

import Foundation
import Kernels

/// A named tensor inside the flat buffer.
public struct ParameterEntry: Sendable, Equatable {
    /// The HF safetensors key, e.g. `model.layers.0.self_attn.q_proj.weight`.
    public let name: String
    /// Shape as HF stores it (Linear weights are [out, in]).
    public let shape: [Int]
    /// Offset in floats from the start of the buffer.
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// Offsets of one transformer block's tensors.
public struct LayerOffsets: Sendable {
    public let qkv: Int, o: Int, gateUp: Int, down: Int, inputNorm: Int, postNorm: Int
}

/// Where every parameter lives in the flat buffer.
public struct ParameterLayout: Sendable {
    public let entries: [ParameterEntry]
    public let count: Int
    public let embed: Int
    public let layers: [LayerOffsets]
    public let finalNorm: Int
    /// The LM head (`lm_head.weight`, or `embed` when tied) or the score head (`score.weight`).
    public let head: Int
    private let index: [String: Int]

    public init(config c: LlamaConfig) {
        var entries: [ParameterEntry] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) -> Int {
            let e = ParameterEntry(name: name, shape: shape, offset: offset)
            entries.append(e)
            offset += e.count
            return e.offset
        }
        let C = c.hiddenSize, A = c.attentionWidth, KV = c.numKVHeads * c.headDim, F = c.intermediateSize
        embed = add("model.embed_tokens.weight", [c.vocabSize, C])
        var layers: [LayerOffsets] = []
        for l in 0..<c.numLayers {
            let p = "model.layers.\(l)."
            let q = add(p + "self_attn.q_proj.weight", [A, C])
            _ = add(p + "self_attn.k_proj.weight", [KV, C])
            _ = add(p + "self_attn.v_proj.weight", [KV, C])
            let o = add(p + "self_attn.o_proj.weight", [C, A])
            let gate = add(p + "mlp.gate_proj.weight", [F, C])
            _ = add(p + "mlp.up_proj.weight", [F, C])
            let down = add(p + "mlp.down_proj.weight", [C, F])
            let n1 = add(p + "input_layernorm.weight", [C])
            let n2 = add(p + "post_attention_layernorm.weight", [C])
            layers.append(LayerOffsets(qkv: q, o: o, gateUp: gate, down: down, inputNorm: n1, postNorm: n2))
        }
        self.layers = layers
        finalNorm = add("model.norm.weight", [C])
        switch c.head {
        case .causalLM:
            head = c.tieWordEmbeddings ? embed : add("lm_head.weight", [c.vocabSize, C])
        case .score:
            head = add("score.weight", [1, C])
        }
        self.entries = entries
        self.count = offset
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.name] = i }
        self.index = index
    }

    /// A layout of arbitrary named tensors, packed in the given order (e.g. LoRA adapters, whose
    /// gradients and AdamW moments then use the same flat-buffer code as a model's). The Llama
    /// offsets (`embed`, `layers`, `finalNorm`, `head`) are unused: 0 and empty.
    public init(tensors: [(name: String, shape: [Int])]) {
        var entries: [ParameterEntry] = []
        var offset = 0, index: [String: Int] = [:]
        for t in tensors {
            require(index[t.name] == nil, "tensor \(t.name) given twice")
            index[t.name] = entries.count
            entries.append(ParameterEntry(name: t.name, shape: t.shape, offset: offset))
            offset += entries[entries.count - 1].count
        }
        self.entries = entries
        self.count = offset
        self.index = index
        embed = 0; layers = []; finalNorm = 0; head = 0
    }

    /// The entry named `name`, if the layout has it.
    public func entry(_ name: String) -> ParameterEntry? { index[name].map { entries[$0] } }
}

/// Owns one 64-byte-aligned float buffer laid out by a `ParameterLayout`.
public final class ParameterBuffer: @unchecked Sendable {
    public let layout: ParameterLayout
    public let base: UnsafeMutablePointer<Float>
    public var count: Int { layout.count }

    /// A zero-filled buffer.
    public init(layout: ParameterLayout) {
        self.layout = layout
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, layout.count) * 4, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(1, layout.count))
        base.initialize(repeating: 0, count: max(1, layout.count))
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }

    /// The named tensor's storage.
    public func view(_ e: ParameterEntry) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: base + e.offset, count: e.count)
    }

    /// The storage of the tensor named `name` (nil if the layout has no such tensor).
    public func view(_ name: String) -> UnsafeMutableBufferPointer<Float>? {
        layout.entry(name).map(view)
    }

    public var all: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }

    public func zero() { base.update(repeating: 0, count: count) }

    /// Copies every value from `other`, which must have the same layout size.
    public func copy(from other: ParameterBuffer) {
        require(other.count == count, "parameter layouts differ")
        base.update(from: other.base, count: count)
    }

    /// A new buffer with the same layout and values.
    public func clone() -> ParameterBuffer {
        let b = ParameterBuffer(layout: layout)
        b.copy(from: self)
        return b
    }
}
