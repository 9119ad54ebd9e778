// PEFT adapter directories: `adapter_config.json` + `adapter_model.safetensors`, as
// `PeftModel.save_pretrained` writes them and `PeftModel.from_pretrained` reads them (peft 0.21).
// Keys `base_model.model.<module>.lora_A.weight` [r, in] and `….lora_B.weight` [out, r], F32,
// metadata {"format": "pt"}. Options Rondo does not implement are refused, never ignored.

import Foundation
import Kernels

extension LoRAAdapter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    /// Reads a PEFT LoRA adapter for a base of shape `model`, strictly: every expected tensor
    /// present with its exact shape, nothing else, no option Rondo would have to ignore.
    public static func load(from dir: URL, model: LlamaConfig) throws -> LoRAAdapter {
        let config = try loadConfig(from: dir)
        let seqCls = isSequenceClassification(dir)
        guard seqCls == (model.head == .score) else {
            throw ModelError(seqCls
                ? "\(dir.appendingPathComponent(configFile).path): a reward-model adapter (task_type SEQ_CLS, with its score head) cannot be used on a causal LM; use it where a reward model is expected (`rondo rm train --adapter`, a reward_model labeller)"
                : "\(dir.appendingPathComponent(configFile).path): a causal-LM adapter (task_type CAUSAL_LM) cannot be used on a reward model; train one with `rondo rm train --lora-r`")
        }
        let adapter = LoRAAdapter(config: config, model: model)
        let url = dir.appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelError("\(url.path): missing; a PEFT adapter directory holds \(configFile) and \(weightsFile)")
        }
        let file = try SafetensorsFile(url: url)
        for e in adapter.layout.entries {
            guard let info = file.info(e.name) else {
                throw ModelError("\(url.path): tensor '\(e.name)' is missing (target_modules \(config.targets.map(\.rawValue)), \(model.numLayers) layers); the adapter does not match its config or this base")
            }
            guard info.shape == e.shape else {
                throw ModelError("\(url.path): tensor '\(e.name)' has shape \(info.shape), expected \(e.shape) (r = \(config.r)); the adapter was made for another base")
            }
            try file.read(e.name, into: adapter.weights.view(e))
        }
        if let extra = file.names.first(where: { adapter.layout.entry($0) == nil }) {
            throw ModelError("\(url.path): unexpected tensor '\(extra)' (Rondo reads lora_A/lora_B of the projections and a reward model's score head only: no other modules_to_save, embeddings or DoRA)")
        }
        return adapter
    }

    /// Parses and checks `adapter_config.json`.
    public static func loadConfig(from dir: URL) throws -> LoRAConfig {
        let url = dir.appendingPathComponent(configFile)
        let json: JSONValue
        do { json = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)) } catch {
            throw ModelError("\(url.path): cannot read the PEFT adapter config (\(error.localizedDescription)); pass a directory written by PeftModel.save_pretrained or Rondo")
        }
        let what = url.path
        func fail(_ key: String, _ why: String) -> ModelError { ModelError("\(what): '\(key)' \(why)") }
        guard json["peft_type"]?.string == "LORA" else { throw fail("peft_type", "is \(json["peft_type"]?.string ?? "missing"), expected LORA") }
        guard let r = json["r"]?.int else { throw fail("r", "is missing or not an integer") }
        guard let alpha = json["lora_alpha"]?.double else { throw fail("lora_alpha", "is missing or not a number") }
        let dropout = json["lora_dropout"]?.double ?? 0
        guard dropout == 0 else {
            throw fail("lora_dropout", "is \(dropout); Rondo trains with lora_dropout 0 (reproducible rounds), set it to 0")
        }
        let names: [String]
        switch json["target_modules"] {
        case .array(let a)?: names = try a.map { v in
            guard let s = v.string else { throw fail("target_modules", "holds a non-string entry") }
            return s
        }
        case .string(let s)? where s == "all-linear": names = [s]
        case .string(let s)?: throw fail("target_modules", "is the pattern '\(s)'; Rondo needs a list of projection names")
        default: throw fail("target_modules", "is missing")
        }
        let off: [(String, (JSONValue) -> Bool)] = [
            ("bias", { $0.string == "none" }), ("fan_in_fan_out", { $0.bool == false }), ("use_dora", { $0.bool == false }),
            ("lora_bias", { $0.bool == false }), ("layers_to_transform", { $0 == .null }),
            ("rank_pattern", { $0.object?.isEmpty == true }), ("alpha_pattern", { $0.object?.isEmpty == true }),
            ("layer_replication", { $0 == .null }), ("trainable_token_indices", { $0 == .null }),
            ("target_parameters", { $0 == .null }), ("exclude_modules", { $0 == .null }),
        ]
        for (key, ok) in off {
            if let v = json[key], !ok(v) { throw fail(key, "is set (\(v)); Rondo implements plain LoRA only, remove or reset it") }
        }
        let task = json["task_type"]?.string
        if let t = task, t != "CAUSAL_LM" && t != "SEQ_CLS" {
            throw fail("task_type", "is \(t); Rondo's LoRA adapts causal language models (CAUSAL_LM) and reward models (SEQ_CLS)")
        }
        // SEQ_CLS saves the score head beside the adapter (PEFT adds ["classifier", "score"]); no
        // other module can be saved.
        if let v = json["modules_to_save"], v != .null {
            let names = v.array?.compactMap(\.string) ?? []
            guard task == "SEQ_CLS", names.count == v.array?.count, names.contains("score"),
                  Set(names).isSubset(of: ["classifier", "score"]) else {
                throw fail("modules_to_save", "is \(v); Rondo saves only a reward model's score head (task_type SEQ_CLS, modules_to_save [\"classifier\", \"score\"])")
            }
        }
        do {
            return try LoRAConfig(r: r, alpha: alpha, targets: try LoRATarget.parse(names, what: what),
                                  useRSLoRA: json["use_rslora"]?.bool ?? false)
        } catch let e as ModelError { throw ModelError("\(what): \(e.description)") }
    }

    /// Whether the adapter in `dir` is a reward model's (`task_type` SEQ_CLS, score head saved).
    /// (false when unreadable: `loadConfig` reports that).
    static func isSequenceClassification(_ dir: URL) -> Bool {
        let url = dir.appendingPathComponent(configFile)
        guard let data = try? Data(contentsOf: url), let json = try? JSONDecoder().decode(JSONValue.self, from: data) else { return false }
        return json["task_type"]?.string == "SEQ_CLS"
    }

    /// Writes the adapter as PEFT does, atomically per file: weights first, config last. A reward
    /// model's adapter is written as PEFT's SEQ_CLS task: `modules_to_save` ["classifier", "score"]
    /// and the score head as `base_model.model.score.weight`.
    /// `baseModel` goes into `base_model_name_or_path` (PEFT treats it as an opaque string).
    public func save(to dir: URL, baseModel: String) throws {
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw ModelError("\(dir.path): cannot create directory (\(error.localizedDescription))")
        }
        let tensors = layout.entries.map { e in (name: e.name, shape: e.shape, values: UnsafeBufferPointer(weights.view(e))) }
        try SafetensorsFile.write(tensors, dtype: .f32, to: dir.appendingPathComponent(Self.weightsFile))
        let c = config
        let fields: [String: JSONValue] = [
            "peft_type": .string("LORA"), "task_type": .string(scoreOffset == nil ? "CAUSAL_LM" : "SEQ_CLS"), "r": .number(Double(c.r)),
            "lora_alpha": .number(c.alpha), "lora_dropout": .number(0), "use_rslora": .bool(c.useRSLoRA),
            "target_modules": .array(c.targets.map(\.rawValue).sorted().map(JSONValue.string)),
            "bias": .string("none"), "fan_in_fan_out": .bool(false), "use_dora": .bool(false),
            "init_lora_weights": .bool(true), "inference_mode": .bool(true),
            "modules_to_save": scoreOffset == nil ? .null : .array([.string("classifier"), .string("score")]),
            "base_model_name_or_path": .string(baseModel), "rank_pattern": .object([:]), "alpha_pattern": .object([:]),
        ]
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var data = try enc.encode(JSONValue.object(fields))
        data.append(UInt8(ascii: "\n"))
        try AtomicFile.write(data, to: dir.appendingPathComponent(Self.configFile))
    }
}

/// `rondo merge`: a base model directory + a PEFT adapter → a plain HF model directory.
public enum LoRAMerge {
    /// Loads `base` and `adapter`, folds W + s·B·A into every targeted weight and writes `out`
    /// (config.json, model.safetensors, the base's tokenizer and generation files); a reward-model
    /// adapter gives a reward model with the adapter's score head. Returns a summary.
    public static func run(base: URL, adapter: URL, out: URL) throws -> String {
        guard base.standardizedFileURL.path != out.standardizedFileURL.path else {
            throw ModelError("\(out.path): --out is the base directory; write the merged model to a new directory")
        }
        let loaded = try ModelDirectory.load(base)
        // A reward-model adapter (SEQ_CLS) on a causal LM: the LM becomes a reward model whose score
        // head is the adapter's (as PEFT's AutoModelForSequenceClassification + adapter).
        let (config, parameters) = LoRAAdapter.isSequenceClassification(adapter) ? loaded.asRewardModel(seed: 0) : (loaded.config, loaded.parameters)
        let lora = try LoRAAdapter.load(from: adapter, model: config)
        lora.merge(into: parameters)
        try ModelDirectory.save(config: config, parameters: parameters, to: out, copyingAuxiliaryFilesFrom: base)
        let c = lora.config
        return "merge: \(out.path): \(lora.modules.count) projections (r \(c.r), alpha \(c.alpha)\(c.useRSLoRA ? ", rsLoRA" : ""), s \(c.scaling)) merged into \(base.path)"
    }
}
