// `rondo import-gguf` and `rondo export-gguf`.

import ArgumentParser
import Foundation
import Model

struct ImportGGUF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-gguf",
        abstract: "Convert a llama.cpp GGUF (Llama architecture) into an HF model directory.",
        discussion: """
            Writes config.json, model.safetensors (float32, q/k rows un-permuted to HF's layout), \
            tokenizer.json, tokenizer_config.json (with the GGUF's chat template) and \
            generation_config.json. Reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and the \
            K-quants Q2_K…Q6_K; dequantisation is exact. --out must not exist (or be empty); it is \
            created only when the import completes.
            """)

    @Argument(help: "The GGUF file.")
    var file: String
    @Option(help: "The model directory to create.")
    var out: String

    func run() throws {
        let start = Date()
        let s = try GGUFImport.run(file: URL(fileURLWithPath: file), out: URL(fileURLWithPath: out))
        let types = s.types.keys.sorted().map { "\($0) \(s.types[$0]!)" }.joined(separator: ", ")
        let c = s.config
        report("import-gguf: \(out): \(c.numLayers) layers, hidden \(c.hiddenSize), vocab \(c.vocabSize), tensors \(types)"
               + (s.hasChatTemplate ? ", chat template" : "") + String(format: " (%.1f s)", Date().timeIntervalSince(start)))
    }
}

struct ExportGGUF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-gguf",
        abstract: "Write an HF Llama model directory as a GGUF file for llama.cpp and Ollama.",
        discussion: """
            Writes llama.cpp's converter's metadata keys and tensor names, the q/k row permutation, \
            the byte-level BPE tokenizer and the chat template (chat_template.jinja or \
            tokenizer_config.json). Any round's policy works: \
            rondo export-gguf RUN/rounds/000007/policy --out p7.gguf. The file is written atomically.
            """)

    @Argument(help: "The HF model directory (config.json, model.safetensors, tokenizer.json).")
    var dir: String
    @Option(help: "The GGUF file to write.")
    var out: String
    @Option(help: "Tensor type: f32, f16 or q8_0 (1-D tensors stay F32; q8_0 uses F16 for rows not a multiple of 32).")
    var type: String = "f32"
    @Option(help: "general.name (default: the config's _name_or_path, else the directory name).")
    var name: String?

    func validate() throws {
        guard GGUFExportType(rawValue: type) != nil else {
            throw ValidationError("--type must be one of \(GGUFExportType.allCases.map(\.rawValue).joined(separator: ", ")), not '\(type)'")
        }
    }

    func run() throws {
        let s = try GGUFExport.run(dir: URL(fileURLWithPath: dir), out: URL(fileURLWithPath: out),
                                   type: GGUFExportType(rawValue: type)!, name: name)
        report("export-gguf: \(out): \(s.tensors) tensors, \(type), \(s.bytes) bytes" + (s.hasChatTemplate ? ", chat template" : ""))
    }
}
