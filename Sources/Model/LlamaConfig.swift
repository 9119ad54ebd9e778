// The HF Llama-family `config.json`, read strictly.
//
// Accepted architectures (a registry, not a growing switch): `llama`, and `mistral` / `qwen2`
// configs whose network is the same bias-free Llama block. RoPE settings are read from the
// transformers-5 `rope_parameters` object or the older top-level `rope_theta`/`rope_scaling`;
// only default (unscaled) RoPE is implemented, anything else is an error naming the key.

import Foundation

/// What sits on top of the transformer trunk.
public enum ModelHead: Sendable, Equatable {
    /// `LlamaForCausalLM`: logits = h · lm_headᵀ (or the embedding matrix when tied).
    case causalLM
    /// `LlamaForSequenceClassification` with one label: per-token score = h · score.weightᵀ.
    case score
}

/// An error in a model's files or config: what is wrong, where, and what to do.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The dimensions and settings of a Llama-family model.
public struct LlamaConfig: Sendable, Equatable {
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var tieWordEmbeddings: Bool
    public var maxPositionEmbeddings: Int
    /// Mistral's sliding window (nil = full attention). Sequences longer than it are refused.
    public var slidingWindow: Int?
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]
    /// Ids that end a sample: `eosTokenIDs`, then `generation_config.json`'s `eos_token_id`s not
    /// among them (e.g. Llama-3's `<|eot_id|>`), as transformers' `generate` stops on both.
    public var stopTokenIDs: [Int]
    public var padTokenID: Int?
    public var head: ModelHead
    /// The config.json as read, re-written on save with Rondo's fields updated.
    public var raw: [String: JSONValue]

    /// Attention output width NH·D (may differ from hidden_size when head_dim is explicit).
    public var attentionWidth: Int { numHeads * headDim }
    /// Width of the fused q/k/v projection, (NH + 2·NKV)·D.
    public var qkvWidth: Int { (numHeads + 2 * numKVHeads) * headDim }
}

/// Per-architecture checks of a config's fields (the registry of accepted `model_type`s).
struct ArchitectureRule: Sendable {
    /// Keys that must be false (or absent) for the plain bias-free Llama block.
    let mustBeFalse: [String]
    /// Reads the sliding window, if the architecture has one.
    let slidingWindow: @Sendable ([String: JSONValue]) -> Int?
}

private let architectureRegistry: [String: ArchitectureRule] = [
    "llama": ArchitectureRule(mustBeFalse: ["attention_bias", "mlp_bias"], slidingWindow: { _ in nil }),
    "mistral": ArchitectureRule(mustBeFalse: ["attention_bias", "mlp_bias"], slidingWindow: { $0["sliding_window"]?.int }),
    "qwen2": ArchitectureRule(mustBeFalse: ["use_sliding_window", "attention_bias", "mlp_bias"], slidingWindow: { _ in nil }),
]

extension LlamaConfig {
    /// Parses `config.json` bytes; `source` names the file in errors.
    public static func parse(_ data: Data, source: String) throws -> LlamaConfig {
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw ModelError("\(source): not valid JSON (\(error.localizedDescription)); expected an HF config.json object")
        }
        guard let o = value.object else { throw ModelError("\(source): expected a JSON object at the top level") }
        return try LlamaConfig(raw: o, source: source)
    }

    /// Reads and parses a `config.json` file.
    public static func load(_ url: URL) throws -> LlamaConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError("\(url.path): cannot read (\(error.localizedDescription)); pass a model directory holding config.json")
        }
        return try parse(data, source: url.path)
    }

    init(raw o: [String: JSONValue], source: String) throws {
        func fail(_ msg: String) -> ModelError { ModelError("\(source): \(msg)") }
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            guard let v = o[key], v != .null else {
                if let d { return d }
                throw fail("missing required key '\(key)'")
            }
            guard let i = v.int, i > 0 else { throw fail("key '\(key)' must be a positive integer, found \(v)") }
            return i
        }
        func optionalInt(_ key: String) throws -> Int? {
            guard let v = o[key], v != .null else { return nil }
            guard let i = v.int, i >= 0 else { throw fail("key '\(key)' must be a non-negative integer, found \(v)") }
            return i
        }
        guard let mt = o["model_type"]?.string else { throw fail("missing 'model_type'; expected \"llama\"") }
        guard let rule = architectureRegistry[mt] else {
            throw fail("unsupported model_type '\(mt)'; Rondo supports \(architectureRegistry.keys.sorted().joined(separator: ", ")) (Llama-family, no biases)")
        }
        for key in rule.mustBeFalse where o[key]?.bool == true {
            throw fail("'\(key)': true is not supported; Rondo implements the bias-free Llama block only")
        }
        if let act = o["hidden_act"]?.string ?? o["hidden_activation"]?.string, act != "silu" {
            throw fail("hidden_act '\(act)' is not supported; the Llama MLP uses 'silu'")
        }
        modelType = mt
        vocabSize = try int("vocab_size")
        hiddenSize = try int("hidden_size")
        intermediateSize = try int("intermediate_size")
        numLayers = try int("num_hidden_layers")
        numHeads = try int("num_attention_heads")
        numKVHeads = try int("num_key_value_heads", default: numHeads)
        guard numHeads % numKVHeads == 0 else {
            throw fail("num_attention_heads (\(numHeads)) must be a multiple of num_key_value_heads (\(numKVHeads))")
        }
        if o["head_dim"] == nil || o["head_dim"] == .null {
            guard hiddenSize % numHeads == 0 else {
                throw fail("hidden_size (\(hiddenSize)) is not divisible by num_attention_heads (\(numHeads)); set head_dim")
            }
        }
        headDim = try int("head_dim", default: hiddenSize / numHeads)
        guard headDim % 2 == 0 else { throw fail("head_dim (\(headDim)) must be even for RoPE") }
        guard let eps = (o["rms_norm_eps"] ?? .number(1e-6)).double, eps > 0 else {
            throw fail("'rms_norm_eps' must be a positive number")
        }
        rmsNormEps = Float(eps)
        // RoPE: transformers 5 `rope_parameters`, or the older top-level keys.
        var theta = o["rope_theta"]?.double
        var ropeType = "default"
        if let rp = o["rope_parameters"], rp != .null {
            guard let rpo = rp.object else { throw fail("'rope_parameters' must be an object") }
            if let t = rpo["rope_theta"]?.double { theta = t }
            ropeType = rpo["rope_type"]?.string ?? rpo["type"]?.string ?? "default"
        }
        if let rs = o["rope_scaling"], rs != .null {
            ropeType = rs["rope_type"]?.string ?? rs["type"]?.string ?? "unknown"
        }
        guard ropeType == "default" else {
            throw fail("RoPE type '\(ropeType)' (rope_scaling / rope_parameters.rope_type) is not supported; only default RoPE is implemented")
        }
        guard let th = theta ?? 10000.0 as Double?, th > 0 else { throw fail("'rope_theta' must be positive") }
        ropeTheta = Float(th)
        tieWordEmbeddings = o["tie_word_embeddings"]?.bool ?? false
        maxPositionEmbeddings = try int("max_position_embeddings", default: 2048)
        slidingWindow = rule.slidingWindow(o)
        bosTokenID = try optionalInt("bos_token_id")
        padTokenID = try optionalInt("pad_token_id")
        if let e = o["eos_token_id"], let arr = e.array {
            eosTokenIDs = arr.compactMap(\.int)
        } else {
            eosTokenIDs = try optionalInt("eos_token_id").map { [$0] } ?? []
        }
        let arch = o["architectures"]?.array?.first?.string ?? ""
        if arch.hasSuffix("ForSequenceClassification") {
            let labels = o["num_labels"]?.int ?? o["id2label"]?.object?.count ?? 1
            guard labels == 1 else {
                throw fail("a sequence-classification model with \(labels) labels; Rondo's reward/value head has exactly one")
            }
            head = .score
        } else {
            head = .causalLM
        }
        stopTokenIDs = eosTokenIDs
        for id in [bosTokenID, padTokenID].compactMap({ $0 }) + eosTokenIDs where id >= vocabSize {
            throw fail("special token id \(id) is outside the vocabulary (vocab_size \(vocabSize))")
        }
        raw = o
    }

    /// Adds the `eos_token_id` (an int or a list) of the `generation_config.json` object `o` to
    /// `stopTokenIDs`; `source` names the file in errors.
    public mutating func addGenerationEOS(_ o: [String: JSONValue], source: String) throws {
        guard let e = o["eos_token_id"], e != .null else { return }
        guard let ids = e.int.map({ [$0] }) ?? e.array?.compactMap(\.int), ids.count == (e.array?.count ?? 1) else {
            throw ModelError("\(source): 'eos_token_id' must be an integer or a list of integers, found \(e)")
        }
        for id in ids where !stopTokenIDs.contains(id) {
            guard id >= 0 && id < vocabSize else {
                throw ModelError("\(source): eos_token_id \(id) is outside the vocabulary (vocab_size \(vocabSize))")
            }
            stopTokenIDs.append(id)
        }
    }

    /// The config.json object to write: the original keys, with Rondo's view of the model applied.
    public func jsonObject() -> [String: JSONValue] {
        var o = raw
        o["model_type"] = .string(modelType)
        o["vocab_size"] = .number(Double(vocabSize))
        o["hidden_size"] = .number(Double(hiddenSize))
        o["intermediate_size"] = .number(Double(intermediateSize))
        o["num_hidden_layers"] = .number(Double(numLayers))
        o["num_attention_heads"] = .number(Double(numHeads))
        o["num_key_value_heads"] = .number(Double(numKVHeads))
        o["head_dim"] = .number(Double(headDim))
        if o["rms_norm_eps"]?.double.map(Float.init) != rmsNormEps {  // keep "1e-05", not its float32 widening
            o["rms_norm_eps"] = .number(Double(rmsNormEps))
        }
        o["tie_word_embeddings"] = .bool(tieWordEmbeddings)
        o["dtype"] = .string("float32")
        o.removeValue(forKey: "torch_dtype")
        o["hidden_act"] = .string("silu")
        let family = ["llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2"][modelType] ?? "Llama"
        switch head {
        case .causalLM:
            o["architectures"] = .array([.string("\(family)ForCausalLM")])
        case .score:
            o["architectures"] = .array([.string("\(family)ForSequenceClassification")])
            o["num_labels"] = nil
            o["id2label"] = .object(["0": .string("LABEL_0")])
            o["label2id"] = .object(["LABEL_0": .number(0)])
        }
        return o
    }
}
