// `rondo import-gguf`: a Llama GGUF → an HF model directory (config.json, F32 model.safetensors,
// tokenizer.json, tokenizer_config.json with the chat template, generation_config.json).
//
// Everything is validated and decoded before anything is written; the directory is then built
// as a hidden temporary sibling of the target and renamed into place, so `--out` either does not
// change or holds the complete import.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What an import produced.
public struct GGUFImportSummary: Sendable {
    public let config: LlamaConfig
    /// Tensor count per ggml type name, e.g. ["Q4_1": 150, "F32": 61].
    public let types: [String: Int]
    public let hasChatTemplate: Bool
}

public enum GGUFImport {
    /// Imports the GGUF at `file` into the new directory `out` (which must not exist, or be empty).
    @discardableResult
    public static func run(file: URL, out: URL) throws -> GGUFImportSummary {
        let out = out.standardizedFileURL
        try checkTarget(out)
        let f = try GGUFFile(url: file)
        let config = try GGUFLlama.config(f)
        let tokenizer = try GGUFTokenizer.hfFiles(f, contextLength: config.maxPositionEmbeddings)
        let parameters = try GGUFLlama.readParameters(f, config: config)

        let parent = out.deletingLastPathComponent()
        let tmp = parent.appendingPathComponent(".\(out.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        var done = false
        defer { if !done { try? FileManager.default.removeItem(at: tmp) } }
        try ModelDirectory.save(config: config, parameters: parameters, to: tmp, copyingAuxiliaryFilesFrom: nil)
        try AtomicFile.write(tokenizer.tokenizerJSON, to: tmp.appendingPathComponent("tokenizer.json"))
        try AtomicFile.write(prettyJSON(tokenizer.tokenizerConfig), to: tmp.appendingPathComponent("tokenizer_config.json"))
        if !tokenizer.generationConfig.isEmpty {
            try AtomicFile.write(prettyJSON(tokenizer.generationConfig), to: tmp.appendingPathComponent("generation_config.json"))
        }
        try moveIntoPlace(tmp, out)
        done = true
        var types: [String: Int] = [:]
        for t in f.tensors { types[t.type.name, default: 0] += 1 }
        return GGUFImportSummary(config: config, types: types, hasChatTemplate: tokenizer.tokenizerConfig["chat_template"] != nil)
    }

    /// `out` must be absent or an empty directory, and its parent must exist.
    static func checkTarget(_ out: URL) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: out.path, isDirectory: &isDir) {
            let empty = isDir.boolValue && ((try? fm.contentsOfDirectory(atPath: out.path))?.isEmpty ?? false)
            guard empty else {
                throw ModelError("\(out.path): already exists; choose a new --out directory (import never overwrites)")
            }
        }
        let parent = out.deletingLastPathComponent()
        guard fm.fileExists(atPath: parent.path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError("\(parent.path): no such directory (the parent of --out); create it first")
        }
    }

    /// Renames the finished temporary directory to `out` and makes the rename durable.
    static func moveIntoPlace(_ tmp: URL, _ out: URL) throws {
        if rename(tmp.path, out.path) != 0 {
            let why = String(cString: strerror(errno))
            throw ModelError("\(out.path): cannot rename the finished import \(tmp.path) into place (\(why)); is --out a non-empty directory?")
        }
        try AtomicFile.syncDirectory(out.deletingLastPathComponent().path, for: out.path)
    }

    static func prettyJSON(_ o: [String: JSONValue]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var json = try encoder.encode(JSONValue.object(o))
        json.append(UInt8(ascii: "\n"))
        return json
    }
}
