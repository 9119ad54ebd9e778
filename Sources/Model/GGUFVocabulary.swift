// The `tokenizer.*` keys an export writes, read from the model directory's tokenizer.json,
// tokenizer_config.json and chat_template.jinja, as llama.cpp's converter builds them
// (`get_vocab_base`, `_set_vocab_gpt2`, `gguf.SpecialVocab`): one token per id below vocab_size
// (`[PAD<id>]`/UNUSED for a missing id), special added tokens CONTROL, other added tokens
// USER_DEFINED, merges as "left right", special ids from tokenizer_config.json's `*_token` (else
// config.json), and the chat template.

import Foundation

struct GGUFVocabulary {
    var metadata: [(String, GGUFValue)] = []
    var chatTemplate: String?

    init(dir: URL, config c: LlamaConfig) throws {
        let path = dir.appendingPathComponent("tokenizer.json").path
        let root = try Self.readJSON(path, required: true)!
        let tokConfig = try Self.readJSON(dir.appendingPathComponent("tokenizer_config.json").path, required: false) ?? .object([:])
        func fail(_ what: String) -> ModelError { ModelError("\(path): \(what)") }
        guard let model = root["model"], model["type"]?.string ?? "BPE" == "BPE", let vocab = model["vocab"]?.object else {
            throw fail("'model' is not a BPE model with a 'vocab' object; llama.cpp's gpt2 tokenizer needs byte-level BPE")
        }
        guard let pre = GGUFPreTokenizer.matching(root["pre_tokenizer"] ?? .null) else {
            let names = GGUFPreTokenizer.known.map { $0.names[0] }.joined(separator: ", ")
            throw fail("'pre_tokenizer' is not one Rondo can name for llama.cpp (tokenizer.ggml.pre: \(names)); llama.cpp identifies pre-tokenizers by name")
        }
        var byID: [Int: String] = [:]
        for (token, id) in vocab {
            guard let i = id.int else { throw fail("vocab entry \(jsonString(token)) has id \(id), not an integer") }
            byID[i] = token
        }
        var added: [Int: Bool] = [:]  // id → special
        for item in root["added_tokens"]?.array ?? [] {
            guard let id = item["id"]?.int, let content = item["content"]?.string else {
                throw fail("an 'added_tokens' entry needs 'id' and 'content'")
            }
            byID[id] = content
            added[id] = item["special"]?.bool ?? false
        }
        var tokens: [GGUFValue] = [], types: [GGUFValue] = []
        for i in 0..<c.vocabSize {
            let type: GGUFTokenType
            if let t = byID[i] {
                tokens.append(.string(t))
                type = added[i].map { $0 ? .control : .userDefined } ?? .normal
            } else {
                tokens.append(.string("[PAD\(i)]"))
                type = .unused
            }
            types.append(.int32(type.rawValue))
        }
        let merges = try (model["merges"]?.array ?? []).enumerated().map { (rank, m) -> GGUFValue in
            if let s = m.string { return .string(s) }
            if let pair = m.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string { return .string("\(a) \(b)") }
            throw fail("model.merges[\(rank)] is not \"a b\" or [\"a\", \"b\"]")
        }
        metadata = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre.names[0])),
            ("tokenizer.ggml.tokens", .array(.string, tokens)),
            ("tokenizer.ggml.token_type", .array(.int32, types)),
            ("tokenizer.ggml.merges", .array(.string, merges)),
        ]
        let tokenIDs = Dictionary(byID.map { ($1, $0) }, uniquingKeysWith: min)
        let fromConfig: [String: Int?] = ["bos": c.bosTokenID, "eos": c.eosTokenIDs.first, "pad": c.padTokenID, "unk": nil]
        for (typ, key) in [("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("pad", "padding")] {
            let named = Self.tokenContent(tokConfig["\(typ)_token"]).flatMap { tokenIDs[$0] }
            if let id = named ?? fromConfig[typ] ?? nil, id < c.vocabSize {
                metadata.append(("tokenizer.ggml.\(key)_token_id", .uint32(UInt32(id))))
            }
        }
        for key in ["add_bos_token", "add_eos_token"] {
            if let b = tokConfig[key]?.bool { metadata.append(("tokenizer.ggml.\(key)", .bool(b))) }
        }
        try addChatTemplate(dir: dir, tokenizerConfig: tokConfig)
    }

    /// `chat_template.jinja`, else tokenizer_config.json's `chat_template` (a string, or a list of
    /// {name, template}: "default" → `tokenizer.chat_template`, others → `.<name>`, as gguf-py).
    private mutating func addChatTemplate(dir: URL, tokenizerConfig: JSONValue) throws {
        let file = dir.appendingPathComponent("chat_template.jinja")
        if FileManager.default.fileExists(atPath: file.path) {
            do { chatTemplate = try String(contentsOf: file, encoding: .utf8) } catch {
                throw ModelError("\(file.path): cannot read as UTF-8 (\(error.localizedDescription))")
            }
        } else if let s = tokenizerConfig["chat_template"]?.string {
            chatTemplate = s
        } else if let list = tokenizerConfig["chat_template"]?.array {
            for item in list {
                guard let name = item["name"]?.string, let t = item["template"]?.string else { continue }
                if name == "default" { chatTemplate = t } else { metadata.append(("tokenizer.chat_template.\(name)", .string(t))) }
            }
        }
        if let chatTemplate { metadata.append(("tokenizer.chat_template", .string(chatTemplate))) }
    }

    /// A `*_token` entry of tokenizer_config.json: a string or {"content": ...}.
    static func tokenContent(_ v: JSONValue?) -> String? { v?.string ?? v?["content"]?.string }

    static func readJSON(_ path: String, required: Bool) throws -> JSONValue? {
        guard FileManager.default.fileExists(atPath: path) else {
            if required { throw ModelError("\(path): missing; export-gguf needs the model's tokenizer.json (byte-level BPE)") }
            return nil
        }
        do { return try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw ModelError("\(path): not valid JSON (\(error.localizedDescription))")
        }
    }
}
