// The tokenizer in GGUF (`tokenizer.ggml.*`) ↔ HF's tokenizer.json / tokenizer_config.json, for
// byte-level BPE (`tokenizer.ggml.model` = "gpt2"), as llama.cpp's converter (`_set_vocab_gpt2`,
// `gguf.SpecialVocab`) writes it and transformers' GGUF loader reads it back.
//
// Tokens are stored by id in the byte-level alphabet ("Ġ" = space); token_type marks CONTROL (3,
// special added tokens) and USER_DEFINED (4, other added tokens); merges are "left right" strings
// in rank order. `tokenizer.ggml.pre` names the pre-tokenizer; the table below maps the names
// llama.cpp uses to the HF pre-tokenizer of the same models.

import Foundation

/// GGUF token types.
enum GGUFTokenType: Int32 {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// A pre-tokenizer llama.cpp knows by name, and its HF tokenizer.json form.
struct GGUFPreTokenizer {
    let names: [String]
    /// The tokenizer.json `pre_tokenizer` value (compact JSON).
    let json: String

    static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#
    static let byteLevelRegex = #"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}"#
    static let byteLevelPlain = #"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}"#

    static func split(_ regex: String) -> String {
        #"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"# + jsonString(regex)
            + #"},"behavior":"Isolated","invert":false},"# + byteLevelPlain + "]}"
    }

    /// The first name of each entry is the one the exporter writes.
    static let known: [GGUFPreTokenizer] = [
        GGUFPreTokenizer(names: ["gpt-2", "default"], json: byteLevelRegex),
        GGUFPreTokenizer(names: ["smollm"], json: #"{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},"# + byteLevelRegex + "]}"),
        GGUFPreTokenizer(names: ["llama-bpe", "llama3", "llama-v3"], json: split(
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#)),
        GGUFPreTokenizer(names: ["qwen2"], json: split(
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#)),
    ]

    static func named(_ name: String) -> GGUFPreTokenizer? { known.first { $0.names.contains(name) } }

    /// The entry whose HF form equals `preTokenizer` (compared as parsed JSON).
    static func matching(_ preTokenizer: JSONValue) -> GGUFPreTokenizer? {
        known.first { (try? JSONDecoder().decode(JSONValue.self, from: Data($0.json.utf8))) == preTokenizer }
    }
}

/// The HF tokenizer files an import writes.
struct HFTokenizerFiles {
    var tokenizerJSON: Data
    var tokenizerConfig: [String: JSONValue]
    var generationConfig: [String: JSONValue]
}

enum GGUFTokenizer {
    // MARK: GGUF → HF

    /// tokenizer.json, tokenizer_config.json and generation_config.json from `tokenizer.ggml.*`.
    static func hfFiles(_ f: GGUFFile, contextLength: Int) throws -> HFTokenizerFiles {
        func key(_ k: String) -> String { "\(f.path): metadata 'tokenizer.ggml.\(k)'" }
        let model = f.metadata["tokenizer.ggml.model"]?.string ?? "(missing)"
        guard model == "gpt2" else {
            throw ModelError("\(key("model")) is '\(model)'; Rondo converts byte-level BPE tokenizers ('gpt2') only")
        }
        let tokens = try strings(f, "tokens")
        let merges = try strings(f, "merges")
        guard let typeValues = f.metadata["tokenizer.ggml.token_type"]?.array else {
            throw ModelError("\(key("token_type")) is missing; it must list one type per token")
        }
        guard typeValues.count == tokens.count else {
            throw ModelError("\(key("token_type")) has \(typeValues.count) entries for \(tokens.count) tokens")
        }
        let types = typeValues.map { $0.int ?? 0 }
        let preName = f.metadata["tokenizer.ggml.pre"]?.string ?? "default"
        guard let pre = GGUFPreTokenizer.named(preName) else {
            let names = GGUFPreTokenizer.known.flatMap(\.names).joined(separator: ", ")
            throw ModelError("\(key("pre")) is '\(preName)', a pre-tokenizer Rondo does not map (known: \(names))")
        }
        func special(_ k: String) throws -> (token: String, id: Int)? {
            guard let v = f.metadata["tokenizer.ggml.\(k)_token_id"] else { return nil }
            guard let id = v.int, id >= 0, id < tokens.count else {
                throw ModelError("\(key("\(k)_token_id")) = \(v) is not a token id (\(tokens.count) tokens)")
            }
            return (tokens[id], id)
        }
        let bosID = try special("bos"), unk = try special("unknown")?.token
        let bos = bosID?.token, eos = try special("eos")?.token, pad = try special("padding")?.token
        _ = try special("eot")
        let addBOS = f.metadata["tokenizer.ggml.add_bos_token"]?.bool ?? false
        let json = tokenizerJSON(tokens: tokens, types: types, merges: merges, pre: pre, unk: unk,
                                 bos: addBOS ? bosID : nil)

        var config: [String: JSONValue] = [
            "backend": .string("tokenizers"), "tokenizer_class": .string("TokenizersBackend"),
            "clean_up_tokenization_spaces": .bool(false), "model_max_length": .number(Double(contextLength)),
            "unk_token": unk.map(JSONValue.string) ?? .null,
        ]
        for (k, v) in [("bos_token", bos), ("eos_token", eos), ("pad_token", pad)] { if let v { config[k] = .string(v) } }
        for k in ["add_bos_token", "add_eos_token"] {
            if let b = f.metadata["tokenizer.ggml.\(k)"]?.bool { config[k] = .bool(b) }
        }
        if let t = f.metadata["tokenizer.chat_template"]?.string { config["chat_template"] = .string(t) }

        var generation: [String: JSONValue] = [:]
        if let id = f.metadata["tokenizer.ggml.bos_token_id"]?.int { generation["bos_token_id"] = .number(Double(id)) }
        if let id = f.metadata["tokenizer.ggml.padding_token_id"]?.int { generation["pad_token_id"] = .number(Double(id)) }
        let ends = ["eos", "eot"].compactMap { f.metadata["tokenizer.ggml.\($0)_token_id"]?.int }
        let unique = ends.enumerated().filter { !ends[..<$0.offset].contains($0.element) }.map(\.element)
        if unique.count == 1 { generation["eos_token_id"] = .number(Double(unique[0])) }
        if unique.count > 1 { generation["eos_token_id"] = .array(unique.map { .number(Double($0)) }) }
        return HFTokenizerFiles(tokenizerJSON: json, tokenizerConfig: config, generationConfig: generation)
    }

    /// An array-of-strings key `tokenizer.ggml.<k>`.
    static func strings(_ f: GGUFFile, _ k: String) throws -> [String] {
        guard let v = f.metadata["tokenizer.ggml.\(k)"] else {
            throw ModelError("\(f.path): metadata 'tokenizer.ggml.\(k)' is missing; a gpt2 tokenizer needs it")
        }
        guard case .array(.string, let items) = v else {
            throw ModelError("\(f.path): metadata 'tokenizer.ggml.\(k)' must be an array of strings, found type \(v.type)")
        }
        return items.map { $0.string! }
    }

    /// The tokenizer.json text, keys in HF's order, vocab in id order.
    static func tokenizerJSON(tokens: [String], types: [Int], merges: [String], pre: GGUFPreTokenizer,
                              unk: String?, bos: (token: String, id: Int)?) -> Data {
        var added: [String] = []
        for (id, t) in tokens.enumerated() {
            let type = GGUFTokenType(rawValue: Int32(clamping: types[id]))
            guard type == .control || type == .userDefined else { continue }
            added.append(#"{"id":\#(id),"content":\#(jsonString(t)),"single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":\#(type == .control)}"#)
        }
        var seen = Set<String>()
        var vocab: [String] = []
        for (id, t) in tokens.enumerated() where seen.insert(t).inserted { vocab.append("\(jsonString(t)):\(id)") }
        let mergePairs = merges.map { m -> String in
            let parts = m.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            return "[" + parts.map(jsonString).joined(separator: ",") + "]"
        }
        let seq = #"{"Sequence":{"id":"A","type_id":0}}"#, seqB = #"{"Sequence":{"id":"B","type_id":1}}"#
        var single = [seq], pair = [seq, seqB], specials = "{}"
        if let (b, id) = bos {
            let st = #"{"SpecialToken":{"id":\#(jsonString(b)),"type_id":0}}"#
            single = [st, seq]
            pair = [st, seq, #"{"SpecialToken":{"id":\#(jsonString(b)),"type_id":1}}"#, seqB]
            specials = #"{\#(jsonString(b)):{"id":\#(jsonString(b)),"ids":[\#(id)],"tokens":[\#(jsonString(b))]}}"#
        }
        let text = """
            {"version":"1.0","truncation":null,"padding":null,
            "added_tokens":[\(added.joined(separator: ",\n"))],
            "normalizer":null,
            "pre_tokenizer":\(pre.json),
            "post_processor":{"type":"TemplateProcessing","single":[\(single.joined(separator: ","))],"pair":[\(pair.joined(separator: ","))],"special_tokens":\(specials)},
            "decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},
            "model":{"type":"BPE","dropout":null,"unk_token":\(unk.map(jsonString) ?? "null"),"continuing_subword_prefix":"","end_of_word_suffix":"","fuse_unk":false,"byte_fallback":false,"ignore_merges":false,
            "vocab":{\(vocab.joined(separator: ",\n"))},
            "merges":[\(mergePairs.joined(separator: ",\n"))]}}

            """
        return Data(text.utf8)
    }
}
