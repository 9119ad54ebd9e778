// Loading and saving Hugging Face model directories: `config.json` plus `model.safetensors`
// (or the sharded `model.safetensors.index.json` form), strictly matched against the
// `ParameterLayout` the config implies, and HF-convention random initialisation.

import Foundation
import Kernels

/// A model read from an HF directory.
public struct LoadedModel: Sendable {
    public let config: LlamaConfig
    public let parameters: ParameterBuffer
    public let directory: URL

    public init(config: LlamaConfig, parameters: ParameterBuffer, directory: URL) {
        self.config = config
        self.parameters = parameters
        self.directory = directory
    }

    /// The model as a one-label reward model: unchanged if it already is one; otherwise the causal
    /// LM's trunk with its head replaced by `score.weight` ~ Normal(0, initializer_range) drawn from
    /// Philox(seed).
    public func asRewardModel(seed: UInt64) -> (LlamaConfig, ParameterBuffer) {
        guard config.head == .causalLM else { return (config, parameters) }
        var c = config
        c.head = .score
        c.tieWordEmbeddings = false  // a sequence classifier has no LM head to tie
        let layout = ParameterLayout(config: c)
        let p = ParameterBuffer(layout: layout)
        for e in layout.entries {
            if let src = parameters.view(e.name), e.name != "score.weight" {
                _ = p.view(e).update(fromContentsOf: src)
            } else {
                let std = c.raw["initializer_range"]?.double.map { Float($0) } ?? 0.02
                let rng = Philox(seed: seed, stream: 0x5C0E_0000_0000_0000)
                let v = p.view(e)
                for j in 0..<v.count { v[j] = std * rng.normal(UInt64(j)) }
            }
        }
        return (c, p)
    }
}

/// Reading, writing and initialising HF model directories.
public enum ModelDirectory {
    public static let configFile = "config.json"
    public static let weightsFile = "model.safetensors"
    public static let indexFile = "model.safetensors.index.json"
    /// Files copied unchanged from the source directory on save, when present there.
    public static let auxiliaryFiles = [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
        "chat_template.jinja",
    ]

    /// Where a checkpoint tensor comes from.
    struct TensorSource {
        let file: SafetensorsFile
        let info: SafetensorsFile.TensorInfo
    }

    // MARK: Load

    /// Reads `config.json` and the weights of the HF model directory `dir`.
    public static func load(_ dir: URL) throws -> LoadedModel {
        let dir = dir.standardizedFileURL
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError("\(dir.path): no such directory; pass an HF model directory holding config.json and model.safetensors")
        }
        var config = try LlamaConfig.load(dir.appendingPathComponent(configFile))
        try readGenerationConfig(dir, into: &config)
        var tensors = try openWeights(dir)
        try sanitize(&tensors, config: config)
        let parameters = ParameterBuffer(layout: ParameterLayout(config: config))
        try fill(parameters, from: tensors, dir: dir)
        return LoadedModel(config: config, parameters: parameters, directory: dir)
    }

    /// Joins `generation_config.json`'s end-of-turn ids (if the file exists) to the config's stop ids.
    static func readGenerationConfig(_ dir: URL, into config: inout LlamaConfig) throws {
        let url = dir.appendingPathComponent("generation_config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)) } catch {
            throw ModelError("\(url.path): cannot read as JSON (\(error.localizedDescription))")
        }
        guard let o = value.object else { throw ModelError("\(url.path): expected a JSON object") }
        try config.addGenerationEOS(o, source: url.path)
    }

    /// Opens `model.safetensors`, or the shards named by `model.safetensors.index.json`.
    static func openWeights(_ dir: URL) throws -> [String: TensorSource] {
        let fm = FileManager.default
        let single = dir.appendingPathComponent(weightsFile)
        if fm.fileExists(atPath: single.path) {
            let file = try SafetensorsFile(url: single)
            var out: [String: TensorSource] = [:]
            for (name, info) in file.infos { out[name] = TensorSource(file: file, info: info) }
            return out
        }
        let index = dir.appendingPathComponent(indexFile)
        guard fm.fileExists(atPath: index.path) else {
            throw ModelError("\(dir.path): no weights found; looked for \(weightsFile) and \(indexFile) (Rondo reads safetensors only; re-save PyTorch .bin checkpoints with save_pretrained(safe_serialization=True))")
        }
        return try openSharded(index: index, dir: dir)
    }

    static func openSharded(index: URL, dir: URL) throws -> [String: TensorSource] {
        let ip = index.path
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: index)) } catch {
            throw ModelError("\(ip): cannot read as JSON (\(error.localizedDescription)); re-download the checkpoint")
        }
        guard let map = value["weight_map"]?.object else {
            throw ModelError("\(ip): expected an object with a 'weight_map' object {tensor: shard file}")
        }
        var byShard: [String: [String]] = [:]
        for (tensor, v) in map {
            guard let shard = v.string, !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw ModelError("\(ip): weight_map entry for tensor '\(tensor)' is not a plain file name in the model directory (\(v))")
            }
            byShard[shard, default: []].append(tensor)
        }
        var out: [String: TensorSource] = [:]
        for shard in byShard.keys.sorted() {
            let url = dir.appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw ModelError("\(ip): shard '\(shard)' (holding tensor '\(byShard[shard]!.sorted()[0])') is missing from \(dir.path); re-download the checkpoint")
            }
            let file = try SafetensorsFile(url: url)
            for (name, info) in file.infos {
                if let other = out[name] {
                    throw ModelError("tensor '\(name)' is stored twice, in \(other.file.path) and \(url.path); re-save the checkpoint")
                }
                guard map[name]?.string == shard else {
                    throw ModelError("\(url.path): tensor '\(name)' is not mapped to this shard by \(ip); the index and shards disagree, re-download the checkpoint")
                }
                out[name] = TensorSource(file: file, info: info)
            }
            for name in byShard[shard]! where file.infos[name] == nil {
                throw ModelError("\(url.path): tensor '\(name)' listed in \(ip) is not in the shard; the file is truncated or corrupt, re-download it")
            }
        }
        return out
    }

    /// Normalises checkpoint keys that HF writers vary on: drops the non-persistent RoPE
    /// `inv_freq` buffers older transformers saved, and a tied `lm_head.weight` (accepted only
    /// when bit-identical to the embedding it duplicates).
    static func sanitize(_ tensors: inout [String: TensorSource], config: LlamaConfig) throws {
        for name in tensors.keys where name.hasPrefix("model.layers.") && name.hasSuffix(".self_attn.rotary_emb.inv_freq") {
            tensors[name] = nil
        }
        if config.head == .causalLM, config.tieWordEmbeddings, let head = tensors["lm_head.weight"] {
            let where_ = head.file.path
            guard let embed = tensors["model.embed_tokens.weight"] else {
                throw ModelError("\(where_): config.json sets tie_word_embeddings=true but the checkpoint has lm_head.weight and no model.embed_tokens.weight; set tie_word_embeddings to false")
            }
            let a = try readFloats(head), b = try readFloats(embed)
            guard head.info.shape == embed.info.shape,
                  a.elementsEqual(b, by: { $0.bitPattern == $1.bitPattern })
            else {
                throw ModelError("\(where_): config.json sets tie_word_embeddings=true but tensor 'lm_head.weight' differs from 'model.embed_tokens.weight'; set tie_word_embeddings to false in config.json to keep a separate LM head")
            }
            tensors["lm_head.weight"] = nil
        }
    }

    private static func readFloats(_ s: TensorSource) throws -> [Float] {
        var v = [Float](repeating: 0, count: s.info.count)
        try v.withUnsafeMutableBufferPointer { try s.file.read(s.info.name, into: $0) }
        return v
    }

    /// Checks the checkpoint against the layout (every entry present with its exact shape, nothing
    /// left over) and copies the values in.
    static func fill(_ p: ParameterBuffer, from tensors: [String: TensorSource], dir: URL) throws {
        for e in p.layout.entries {
            guard let s = tensors[e.name] else {
                throw ModelError("\(dir.path): tensor '\(e.name)' is missing (expected shape \(e.shape) from config.json); the checkpoint does not match its config")
            }
            guard s.info.shape == e.shape else {
                throw ModelError("\(s.file.path): tensor '\(e.name)' has shape \(s.info.shape), expected \(e.shape) from config.json")
            }
        }
        let extra = tensors.keys.filter { p.layout.entry($0) == nil }.sorted()
        if let first = extra.first {
            let s = tensors[first]!
            let more = extra.count > 1 ? " (and \(extra.count - 1) more: \(extra.dropFirst().prefix(5).joined(separator: ", "))\(extra.count > 6 ? ", …" : ""))" : ""
            let why = extra.contains(where: { $0.hasSuffix(".bias") })
                ? "Rondo supports bias-free Llama blocks only"
                : "the config.json does not account for it; check that the checkpoint matches its config"
            throw ModelError("unexpected tensor '\(first)' in \(s.file.path)\(more); \(why)")
        }
        for e in p.layout.entries {
            let s = tensors[e.name]!
            let values = p.view(e)
            try s.file.read(e.name, into: values)
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                throw ModelError("\(s.file.path): tensor '\(e.name)' holds \(values[i]) at element \(i); the weights are corrupt (e.g. a diverged update), use an earlier checkpoint")
            }
        }
    }

    // MARK: Save

    /// Writes `config.json`, `model.safetensors` (F32, HF names and shapes; a tied model has no
    /// `lm_head.weight`, like transformers) and copies the tokenizer / generation files from
    /// `source`. Every file is replaced atomically.
    public static func save(config: LlamaConfig, parameters: ParameterBuffer, to dir: URL, copyingAuxiliaryFilesFrom source: URL?) throws {
        let dir = dir.standardizedFileURL
        let layout = ParameterLayout(config: config)
        guard layout.entries == parameters.layout.entries else {
            throw ModelError("\(dir.path): cannot save, the parameter buffer's layout does not match the config")
        }
        let fm = FileManager.default
        do { try fm.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw ModelError("\(dir.path): cannot create directory (\(error.localizedDescription))")
        }
        try AtomicFile.syncDirectory(dir.deletingLastPathComponent().path, for: dir.path)

        let tensors = layout.entries.map { e in
            (name: e.name, shape: e.shape, values: UnsafeBufferPointer(parameters.view(e)))
        }
        try SafetensorsFile.write(tensors, dtype: .f32, to: dir.appendingPathComponent(weightsFile))
        try removeStaleIndex(in: dir)

        if let source = source?.standardizedFileURL, source.path != dir.path {
            for name in auxiliaryFiles {
                let src = source.appendingPathComponent(name)
                guard fm.fileExists(atPath: src.path) else { continue }
                let data: Data
                do { data = try Data(contentsOf: src) } catch {
                    throw ModelError("\(src.path): cannot read (\(error.localizedDescription)) while copying it to \(dir.path)")
                }
                try AtomicFile.write(data, to: dir.appendingPathComponent(name))
            }
        }

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var json = try encoder.encode(JSONValue.object(config.jsonObject()))
        json.append(UInt8(ascii: "\n"))
        try AtomicFile.write(json, to: dir.appendingPathComponent(configFile))
    }

    /// After writing `model.safetensors` over a sharded checkpoint, removes the index and the
    /// shards it names so the directory holds one unambiguous set of weights.
    private static func removeStaleIndex(in dir: URL) throws {
        let index = dir.appendingPathComponent(indexFile)
        guard FileManager.default.fileExists(atPath: index.path) else { return }
        if let data = try? Data(contentsOf: index),
           let map = (try? JSONDecoder().decode(JSONValue.self, from: data))?["weight_map"]?.object {
            for shard in Set(map.values.compactMap(\.string))
            where !shard.contains("/") && shard != weightsFile && shard.hasSuffix(".safetensors") {
                try? FileManager.default.removeItem(at: dir.appendingPathComponent(shard))
            }
        }
        do { try FileManager.default.removeItem(at: index) } catch {
            throw ModelError("\(index.path): cannot remove the stale shard index (\(error.localizedDescription)); delete it by hand")
        }
        try AtomicFile.syncDirectory(dir.path, for: index.path)
    }

    // MARK: Random init

    /// HF `_init_weights`: every 2-D tensor (embedding, linear, LM/score head) ~ Normal(0, σ) with
    /// σ = `initializerRange` ?? config.json `initializer_range` ?? 0.02, every RMSNorm weight 1,
    /// and the embedding row `pad_token_id` zero. Element j of layout entry i is
    /// σ · `Philox(seed:, stream: i).normal(j)`, independent of threads and of other tensors.
    public static func randomInit(config: LlamaConfig, seed: UInt64, initializerRange: Float? = nil) -> ParameterBuffer {
        let layout = ParameterLayout(config: config)
        let p = ParameterBuffer(layout: layout)
        let std = initializerRange ?? config.raw["initializer_range"]?.double.map { Float($0) } ?? 0.02
        for (i, e) in layout.entries.enumerated() {
            let v = p.view(e)
            if e.shape.count >= 2 {
                let rng = Philox(seed: seed, stream: UInt64(i))
                parallelRows(e.count, minRowsPerTask: 1 << 15) { r in
                    for j in r { v[j] = std * rng.normal(UInt64(j)) }
                }
            } else {
                v.update(repeating: 1)
            }
        }
        if let pad = config.padTokenID, pad < config.vocabSize {
            let C = config.hiddenSize
            (p.base + layout.embed + pad * C).update(repeating: 0, count: C)
        }
        return p
    }
}
