// Reading HF tokenizer.json (format "1.0", as HF tokenizers' `tokenizer/serialization.rs` writes
// it) into the parts of a byte-level BPE tokenizer, refusing — with a message naming the field —
// everything this implementation would not reproduce exactly: other models (WordPiece, Unigram,
// WordLevel), normalizers, pre-tokenizers other than ByteLevel / Split / Digits, decoders other
// than ByteLevel, post-processors that add tokens, truncation and padding.

import Foundation

/// The parsed contents of a tokenizer.json.
struct TokenizerDefinition {
    var vocab: [String: Int32] = [:]
    /// In rank order.
    var merges: [(String, String)] = []
    var ignoreMerges = false
    var unkToken: String?
    var fuseUnk = false
    /// In file order.
    var addedTokens: [AddedToken] = []
    var preTokenizer = PreTokenizer(steps: [])

    init(json data: Data, source: String) throws {
        func fail(_ what: String) -> TokenizerError { TokenizerError("\(source): \(what)") }
        let root: [String: Any]
        do {
            guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw fail("expected a JSON object (an HF tokenizer.json)")
            }
            root = obj
        } catch let e as TokenizerError {
            throw e
        } catch {
            throw fail("not valid JSON (\(error.localizedDescription))")
        }
        if let v = root["version"], !isNull(v), v as? String != "1.0" {
            throw fail("unknown tokenizer.json version \(v); expected \"1.0\"")
        }
        for key in ["truncation", "padding"] where !isNull(root[key]) {
            throw fail("\"\(key)\" is set; encode never truncates or pads — set it to null")
        }
        if let n = root["normalizer"], !isNull(n) {
            let d = n as? [String: Any]
            let emptySequence = d?["type"] as? String == "Sequence" && (d?["normalizers"] as? [Any])?.isEmpty == true
            if !emptySequence {
                throw fail("normalizer \(typeName(n)) is not supported (only null: byte-level BPE without normalization)")
            }
        }
        try TokenizerDefinition.checkPostProcessor(root["post_processor"], fail)
        let decoder = root["decoder"]
        guard typeName(decoder) == "ByteLevel" else {
            throw fail("decoder \(typeName(decoder)) is not supported (only ByteLevel)")
        }
        guard let model = root["model"] as? [String: Any] else { throw fail("missing \"model\"") }
        try parseModel(model, fail)
        preTokenizer = PreTokenizer(steps: try TokenizerDefinition.preTokenizerSteps(root["pre_tokenizer"], fail))
        for (i, item) in ((root["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let t = item as? [String: Any], let content = t["content"] as? String, let id = intValue(t["id"]) else {
                throw fail("added_tokens[\(i)] needs \"id\" and \"content\"")
            }
            var token = AddedToken(id: Int32(clamping: id), content: content)  // ids are reassigned as HF does
            token.singleWord = t["single_word"] as? Bool ?? false
            token.lstrip = t["lstrip"] as? Bool ?? false
            token.rstrip = t["rstrip"] as? Bool ?? false
            token.normalized = t["normalized"] as? Bool ?? true
            token.special = t["special"] as? Bool ?? false
            addedTokens.append(token)
        }
    }

    private mutating func parseModel(_ model: [String: Any], _ fail: (String) -> TokenizerError) throws {
        let type = model["type"] as? String ?? (model["merges"] != nil ? "BPE" : "?")
        guard type == "BPE" else {
            throw fail("model type \(type) is not supported (only BPE with byte-level pre-tokenization)")
        }
        if let d = model["dropout"], !isNull(d), (d as? Double) != 0 {
            throw fail("model.dropout \(d) is not supported (BPE dropout is random; use null)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], !isNull(v), (v as? String) != "" {
                throw fail("model.\(key) \(v) is not supported by byte-level BPE (use null)")
            }
        }
        if model["byte_fallback"] as? Bool == true {
            throw fail("model.byte_fallback true is not supported (byte-level BPE covers every byte)")
        }
        ignoreMerges = model["ignore_merges"] as? Bool ?? false
        fuseUnk = model["fuse_unk"] as? Bool ?? false
        guard let v = model["vocab"] as? [String: Any] else { throw fail("model.vocab must be an object token → id") }
        vocab.reserveCapacity(v.count)
        for (token, value) in v {
            guard let id = intValue(value), id >= 0, id <= Int(Int32.max) else {
                throw fail("model.vocab[\(token.debugDescription)] is not a non-negative integer id")
            }
            vocab[token] = Int32(id)
        }
        if let u = model["unk_token"], !isNull(u) {
            guard let s = u as? String, vocab[s] != nil else { throw fail("model.unk_token \(u) is not in the vocabulary") }
            unkToken = s
        }
        guard let m = model["merges"] as? [Any] else { throw fail("model.merges must be a list") }
        merges.reserveCapacity(m.count)
        for (rank, item) in m.enumerated() {
            if let s = item as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw fail("model.merges[\(rank)] \(s.debugDescription) is not two tokens separated by one space")
                }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = item as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                merges.append((a, b))
            } else {
                throw fail("model.merges[\(rank)] must be \"a b\" or [\"a\", \"b\"]")
            }
        }
    }

    /// Post-processors only act when special tokens are added on encode (HF's
    /// `add_special_tokens=True`); Rondo's `encode` is always `add_special_tokens=False`, so the
    /// known kinds (ByteLevel, TemplateProcessing — e.g. Llama 3's BOS template — BertProcessing,
    /// RobertaProcessing, Sequence of these) are accepted and ignored. Unknown kinds are refused.
    private static func checkPostProcessor(_ pp: Any?, _ fail: (String) -> TokenizerError) throws {
        guard let pp, !isNull(pp) else { return }
        let d = pp as? [String: Any] ?? [:]
        switch typeName(pp) {
        case "ByteLevel", "TemplateProcessing", "BertProcessing", "RobertaProcessing":
            return
        case "Sequence":
            for p in (d["processors"] as? [Any]) ?? [] { try checkPostProcessor(p, fail) }
        default:
            throw fail("post_processor \(typeName(pp)) is not supported (known: ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence)")
        }
    }

    /// The pipeline steps of a pre_tokenizer; it must end with ByteLevel.
    private static func preTokenizerSteps(_ pt: Any?, _ fail: (String) -> TokenizerError) throws -> [PreTokenizer.Step] {
        var steps: [PreTokenizer.Step] = []
        var byteLevel = false
        func add(_ pt: Any?) throws {
            let d = pt as? [String: Any] ?? [:]
            let type = typeName(pt)
            if byteLevel { throw fail("pre_tokenizer \(type) after ByteLevel is not supported (ByteLevel must come last)") }
            switch type {
            case "Sequence":
                for p in (d["pretokenizers"] as? [Any]) ?? [] { try add(p) }
            case "ByteLevel":
                byteLevel = true
                if d["add_prefix_space"] as? Bool ?? true { steps.append(.prefixSpace) }
                if d["use_regex"] as? Bool ?? true { steps.append(.split(.scanner(PatternScanner(pattern: .gpt2)))) }
            case "Split":
                let behavior = d["behavior"] as? String ?? "?"
                guard behavior == "Isolated" else { throw fail("pre_tokenizer Split behavior \(behavior) is not supported (only Isolated)") }
                guard d["invert"] as? Bool != true else { throw fail("pre_tokenizer Split with invert true is not supported") }
                let pattern = d["pattern"] as? [String: Any] ?? [:]
                if let r = pattern["Regex"] as? String {
                    if let s = PatternScanner.forRegex(r) {
                        steps.append(.split(.scanner(s)))
                    } else {
                        do { steps.append(.split(.regex(try RegexSplitter(pattern: r)))) } catch let e as TokenizerError { throw fail(e.description) }
                    }
                } else if let s = pattern["String"] as? String, !s.isEmpty {
                    steps.append(.split(.literal(Array(s.utf8))))
                } else {
                    throw fail("pre_tokenizer Split needs a non-empty pattern {\"Regex\": …} or {\"String\": …}")
                }
            case "Digits":
                steps.append(.split(.digits(individual: d["individual_digits"] as? Bool ?? false)))
            default:
                throw fail("pre_tokenizer \(type) is not supported (only ByteLevel, Split, Digits and Sequence of them)")
            }
        }
        try add(pt)
        guard byteLevel else { throw fail("pre_tokenizer \(typeName(pt)) has no ByteLevel step; only byte-level BPE is supported") }
        return steps
    }
}

/// `"type"` of a JSON component, "null" for null or absent.
private func typeName(_ v: Any?) -> String {
    guard let v, !isNull(v) else { return "null" }
    return (v as? [String: Any])?["type"] as? String ?? "(untyped)"
}

private func isNull(_ v: Any?) -> Bool { v == nil || v is NSNull }

private func intValue(_ v: Any?) -> Int? { v as? Int }
