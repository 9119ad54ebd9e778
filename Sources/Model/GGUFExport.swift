// `rondo export-gguf`: an HF Llama directory → a GGUF file that llama.cpp and Ollama load,
// following llama.cpp's `convert_hf_to_gguf.py` (`LlamaModel`): its metadata keys, value types and
// order, its tensor names (in sorted HF-name order), the q/k row permutation applied before
// quantisation, and its type per tensor (1-D tensors F32; Q8_0 falls back to F16 for rows whose
// length is not a multiple of 32, as the converter does).

import Foundation

/// The tensor encoding an export asks for (`general.file_type`).
public enum GGUFExportType: String, Sendable, CaseIterable {
    case f32, f16, q8_0

    /// llama.cpp's `LLAMA_FTYPE_*` value.
    var fileType: UInt32 {
        switch self {
        case .f32: return 0
        case .f16: return 1
        case .q8_0: return 7
        }
    }

    /// The type of a tensor with `ne`, as the converter chooses it.
    func tensorType(ne: [Int]) -> GGMLType {
        guard ne.count > 1 else { return .f32 }
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .q8_0: return ne[0] % 32 == 0 ? .q8_0 : .f16
        }
    }
}

/// What an export wrote.
public struct GGUFExportSummary: Sendable {
    public let tensors: Int
    public let bytes: Int
    public let hasChatTemplate: Bool
}

public enum GGUFExport {
    /// Exports the model directory `dir` to `out`. `name` is `general.name` (default: the
    /// config's `_name_or_path`, else the directory name).
    @discardableResult
    public static func run(dir: URL, out: URL, type: GGUFExportType, name: String? = nil) throws -> GGUFExportSummary {
        let model = try ModelDirectory.load(dir)
        let c = model.config
        guard c.head == .causalLM else {
            throw ModelError("\(dir.path): a sequence-classification (reward/value) model; llama.cpp runs causal LMs only, export the policy")
        }
        guard c.modelType == "llama" || (c.modelType == "mistral" && c.slidingWindow == nil) else {
            throw ModelError("\(dir.path)/config.json: model_type '\(c.modelType)' cannot be exported as a llama GGUF (supported: llama, mistral without sliding_window)")
        }
        let vocab = try GGUFVocabulary(dir: dir, config: c)
        let modelName = name ?? c.raw["_name_or_path"]?.string ?? c.raw["_model_name_or_path"]?.string ?? dir.standardizedFileURL.lastPathComponent
        var metadata = architectureMetadata(c, name: modelName, parameters: model.parameters.count, fileType: type.fileType)
        metadata += vocab.metadata
        metadata.append(("general.quantization_version", .uint32(2)))
        let tensors = encodeTensors(model, type: type)
        try GGUFWriter.write(metadata: metadata, tensors: tensors, to: out)
        let size = ((try? FileManager.default.attributesOfItem(atPath: out.path))?[.size] as? Int) ?? 0
        return GGUFExportSummary(tensors: tensors.count, bytes: size, hasChatTemplate: vocab.chatTemplate != nil)
    }

    /// `general.*` and `llama.*` keys, in the converter's order and with llama.cpp's value types.
    static func architectureMetadata(_ c: LlamaConfig, name: String, parameters: Int, fileType: UInt32) -> [(String, GGUFValue)] {
        func u32(_ v: Int) -> GGUFValue { .uint32(UInt32(v)) }
        return [
            ("general.architecture", .string("llama")),
            ("general.type", .string("model")),
            ("general.name", .string(name)),
            ("general.size_label", .string(sizeLabel(parameters))),
            ("llama.block_count", u32(c.numLayers)),
            ("llama.context_length", u32(c.maxPositionEmbeddings)),
            ("llama.embedding_length", u32(c.hiddenSize)),
            ("llama.feed_forward_length", u32(c.intermediateSize)),
            ("llama.attention.head_count", u32(c.numHeads)),
            ("llama.attention.head_count_kv", u32(c.numKVHeads)),
            ("llama.rope.freq_base", .float32(c.ropeTheta)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(c.rmsNormEps)),
            ("llama.attention.key_length", u32(c.headDim)),
            ("llama.attention.value_length", u32(c.headDim)),
            ("general.file_type", .uint32(fileType)),
            ("llama.vocab_size", u32(c.vocabSize)),
            ("llama.rope.dimension_count", u32(c.headDim)),
        ]
    }

    /// gguf-py's `model_weight_count_rounded_notation`: e.g. 133440 → "133K", 134515008 → "135M".
    static func sizeLabel(_ n: Int) -> String {
        let (scaled, suffix): (Double, String) =
            n > 1_000_000_000_000 ? (Double(n) * 1e-12, "T") : n > 1_000_000_000 ? (Double(n) * 1e-9, "B")
            : n > 1_000_000 ? (Double(n) * 1e-6, "M") : (Double(n) * 1e-3, "K")
        let whole = Int(scaled.rounded(.toNearestOrEven))
        let digits = whole == 0 ? 0 : String(whole).count
        return String(format: "%.\(max(2 - digits, 0))f", scaled) + suffix
    }

    /// Every tensor, in sorted HF-name order, renamed, and permuted (q/k) and encoded as it is written.
    static func encodeTensors(_ model: LoadedModel, type: GGUFExportType) -> [GGUFTensorData] {
        let c = model.config
        let hfToGGUF = Dictionary(uniqueKeysWithValues: GGUFLlama.tensorNames(numLayers: c.numLayers).map { ($0.hf, $0.gguf) })
        var out: [GGUFTensorData] = []
        let parameters = model.parameters
        for e in parameters.layout.entries.sorted(by: { $0.name < $1.name }) {
            let ne = Array(e.shape.reversed())
            let t = type.tensorType(ne: ne)
            let heads = GGUFLlama.permutedHeads(e.name, config: c)
            out.append(GGUFTensorData(name: hfToGGUF[e.name]!, ne: ne, type: t) {
                var values = Array(parameters.view(e))
                if let heads {
                    values.withUnsafeMutableBufferPointer { GGUFLlama.permuteRows($0, rows: e.shape[0], heads: heads, toGGUF: true) }
                }
                return values.withUnsafeBufferPointer { Quantize.encode($0, as: t) }
            })
        }
        return out
    }
}
