// The Llama architecture in GGUF, as llama.cpp's `convert_hf_to_gguf.py` (`LlamaModel`) writes it
// and its loader (`src/llama-model.cpp`) reads it: the `llama.*` metadata ↔ HF config.json, the
// tensor names ↔ HF names, and the q/k row permutation.
//
// HF's Llama rotates pairs (i, i + D/2) of each head; llama.cpp's rotates adjacent pairs (2j, 2j+1).
// The converter therefore reorders the rows of q_proj and k_proj inside every head:
//   gguf_row[h·D + 2j + s] = hf_row[h·D + s·D/2 + j]        (j < D/2, s ∈ {0, 1})
// Pair j has the same frequency in both, so after the reorder llama.cpp's RoPE computes HF's.

import Foundation

/// The Llama GGUF layout.
public enum GGUFLlama {
    public static let architecture = "llama"

    /// HF name of every GGUF tensor of a `numLayers`-layer model (output.weight included).
    static func tensorNames(numLayers: Int) -> [(gguf: String, hf: String)] {
        var out: [(String, String)] = [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output_norm.weight", "model.norm.weight"),
            ("output.weight", "lm_head.weight"),
        ]
        let block: [(String, String)] = [
            ("attn_norm", "input_layernorm"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
            ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"), ("ffn_norm", "post_attention_layernorm"),
            ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"), ("ffn_down", "mlp.down_proj"),
        ]
        for l in 0..<numLayers {
            for (g, h) in block { out.append(("blk.\(l).\(g).weight", "model.layers.\(l).\(h).weight")) }
        }
        return out
    }

    /// Heads of the permuted matrix `hfName` (q: head_count, k: head_count_kv), nil if not permuted.
    static func permutedHeads(_ hfName: String, config: LlamaConfig) -> Int? {
        if hfName.hasSuffix(".self_attn.q_proj.weight") { return config.numHeads }
        if hfName.hasSuffix(".self_attn.k_proj.weight") { return config.numKVHeads }
        return nil
    }

    /// GGUF row `r` of a head of `d` rows holds this HF row (export direction, HF → GGUF).
    @inline(__always)
    static func hfRow(ofGGUFRow r: Int, headDim d: Int) -> Int {
        let h = r / d, i = r % d
        return h * d + (i % 2) * (d / 2) + i / 2
    }

    /// Reorders the rows of a [rows, cols] matrix: `toGGUF` applies the converter's permutation,
    /// otherwise its inverse.
    static func permuteRows(_ m: UnsafeMutableBufferPointer<Float>, rows: Int, heads: Int, toGGUF: Bool) {
        let cols = m.count / rows, d = rows / heads
        let copy = [Float](m)
        copy.withUnsafeBufferPointer { src in
            for g in 0..<rows {
                let h = hfRow(ofGGUFRow: g, headDim: d)
                let (to, from) = toGGUF ? (g, h) : (h, g)
                for c in 0..<cols { m[to * cols + c] = src[from * cols + c] }
            }
        }
    }

    // MARK: Metadata → config.json

    /// The config.json object transformers builds from the file's `llama.*` metadata.
    static func configObject(_ f: GGUFFile) throws -> [String: JSONValue] {
        func meta(_ key: String) -> GGUFValue? { f.metadata["llama." + key] }
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            guard let v = meta(key) else {
                if let d { return d }
                throw ModelError("\(f.path): metadata 'llama.\(key)' is missing; a llama GGUF must have it")
            }
            guard let i = v.int, i > 0 else {
                throw ModelError("\(f.path): metadata 'llama.\(key)' must be a positive integer, found \(v)")
            }
            return i
        }
        func float(_ key: String, default d: Double) throws -> Double {
            guard let v = meta(key) else { return d }
            guard let x = v.float else { throw ModelError("\(f.path): metadata 'llama.\(key)' must be a float, found \(v)") }
            return x
        }
        let heads = try int("attention.head_count")
        let hidden = try int("embedding_length")
        let tokens = f.metadata["tokenizer.ggml.tokens"]?.array?.count
        var o: [String: JSONValue] = [
            "model_type": .string("llama"),
            "num_hidden_layers": .number(Double(try int("block_count"))),
            "max_position_embeddings": .number(Double(try int("context_length"))),
            "hidden_size": .number(Double(hidden)),
            "intermediate_size": .number(Double(try int("feed_forward_length"))),
            "num_attention_heads": .number(Double(heads)),
            "num_key_value_heads": .number(Double(try int("attention.head_count_kv", default: heads))),
            "head_dim": .number(Double(try int("attention.key_length", default: try int("rope.dimension_count", default: hidden / heads)))),
            "rms_norm_eps": .number(try float("attention.layer_norm_rms_epsilon", default: 1e-5)),
            "rope_parameters": .object(["rope_theta": .number(try float("rope.freq_base", default: 10000)), "rope_type": .string("default")]),
            "tie_word_embeddings": .bool(f.tensor("output.weight") == nil),
            "initializer_range": .number(0.02),
            "attention_bias": .bool(false), "mlp_bias": .bool(false), "attention_dropout": .number(0),
            "hidden_act": .string("silu"), "pretraining_tp": .number(1), "use_cache": .bool(true),
        ]
        if let v = meta("vocab_size")?.int ?? tokens { o["vocab_size"] = .number(Double(v)) }
        if let v = f.metadata["llama.value_length"]?.int, v != o["head_dim"]?.int {
            throw ModelError("\(f.path): metadata 'llama.attention.value_length' = \(v) differs from key_length; Rondo's attention needs equal q/k and v head sizes")
        }
        if let s = meta("rope.scaling.type")?.string, s != "none" {
            throw ModelError("\(f.path): metadata 'llama.rope.scaling.type' = '\(s)' is not supported; only default RoPE is implemented")
        }
        if let name = f.metadata["general.name"]?.string { o["_model_name_or_path"] = .string(name) }
        for (key, hf) in [("bos", "bos_token_id"), ("eos", "eos_token_id"), ("padding", "pad_token_id")] {
            if let id = f.metadata["tokenizer.ggml.\(key)_token_id"]?.int { o[hf] = .number(Double(id)) }
        }
        return o
    }

    /// The config, after checking the architecture (before any tensor is looked at).
    static func config(_ f: GGUFFile) throws -> LlamaConfig {
        guard let arch = f.metadata["general.architecture"]?.string else {
            throw ModelError("\(f.path): metadata 'general.architecture' is missing; not a model file")
        }
        guard arch == architecture else {
            throw ModelError("\(f.path): unsupported architecture '\(arch)' (supported: \(architecture))")
        }
        return try LlamaConfig(raw: try configObject(f), source: "\(f.path) (llama.* metadata)")
    }

    // MARK: Tensors

    /// GGUF tensor infos by HF name, checked against the config: none missing, none extra, every
    /// shape as llama.cpp's loader demands.
    static func matchTensors(_ f: GGUFFile, config c: LlamaConfig) throws -> [String: GGUFTensorInfo] {
        let layout = ParameterLayout(config: c)
        var byName: [String: GGUFTensorInfo] = [:]
        let known = tensorNames(numLayers: c.numLayers)
        for (g, h) in known {
            guard let e = layout.entry(h) else { continue }  // output.weight of a tied model
            guard let t = f.tensor(g) else {
                throw ModelError("\(f.path): missing tensor '\(g)' (llama.block_count = \(c.numLayers)); the file is incomplete")
            }
            let need = Array(e.shape.reversed())
            guard t.ne == need else {
                throw ModelError("\(f.path): tensor '\(g)' has shape \(t.ne) but the metadata needs \(need)")
            }
            byName[h] = t
        }
        let expected = Set(known.map(\.gguf))
        if let extra = f.tensors.first(where: { !expected.contains($0.name) }) {
            throw ModelError("\(f.path): unexpected tensor '\(extra.name)'; a llama GGUF of \(c.numLayers) layers has only \(known.count - (c.tieWordEmbeddings ? 1 : 0)) tensors (llama.cpp refuses extra tensors too)")
        }
        return byName
    }

    /// Decodes every tensor into a parameter buffer in HF layout (q/k rows un-permuted).
    static func readParameters(_ f: GGUFFile, config c: LlamaConfig) throws -> ParameterBuffer {
        let tensors = try matchTensors(f, config: c)
        let p = ParameterBuffer(layout: ParameterLayout(config: c))
        for e in p.layout.entries {
            let v = p.view(e)
            try f.read(tensors[e.name]!, into: v)
            guard v.allSatisfy({ $0.isFinite }) else {
                throw ModelError("\(f.path): tensor '\(tensors[e.name]!.name)' decodes to a non-finite value; the file is corrupt")
            }
            if let heads = permutedHeads(e.name, config: c) {
                permuteRows(v, rows: e.shape[0], heads: heads, toGGUF: false)
            }
        }
        return p
    }
}
