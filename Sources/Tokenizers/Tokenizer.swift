// Byte-level BPE tokenizers read from HF tokenizer.json, encoding and decoding exactly as the Rust
// `tokenizers` library (`Tokenizer.encode(text, add_special_tokens=False)` and
// `Tokenizer.decode(ids, skip_special_tokens)`) does for GPT-2-style (ByteLevel with its regex) and
// Llama-3 / Qwen2-style (Split regex, then ByteLevel) tokenizers:
//
//   text → added tokens matched in the raw text (AddedTokens.swift) → pre-tokenizer pieces
//   (PreTokenizer.swift, Scanners.swift) → BPE per piece on its UTF-8 bytes (BPE.swift) → ids;
//   ids → bytes of each token (ByteLevel decoder, ByteLevel.swift) → UTF-8 with U+FFFD for
//   invalid sequences.
//
// Added-token ids are assigned as HF does on load (a token already in the vocabulary keeps that
// id; a new one gets the next free id), which is the file's id for every well-formed file.

import Foundation

/// A tokenizer.json that cannot be read or is not supported; the message names the file and field.
public struct TokenizerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A byte-level BPE tokenizer (HF tokenizer.json). Thread-safe: concurrent `encode` calls are
/// allowed (one of them uses the shared piece cache, the others a private one).
public final class Tokenizer: @unchecked Sendable {
    let model: BPEModel
    let preTokenizer: PreTokenizer
    private let added: AddedTokenMatcher
    /// Added tokens by content, then the model vocabulary (HF `token_to_id` order).
    private let addedIDs: [String: Int32]
    private let vocab: [String: Int32]
    /// `tokenStrings[id]`: the added token's content, else the vocabulary string.
    private let tokenStrings: [String?]
    /// Decoded bytes of every id, concatenated; id i owns `decodeBytes[decodeStart[i]..<decodeStart[i+1]]`.
    private let decodeBytes: [UInt8]
    private let decodeStart: [Int32]
    /// Dropped by `decode(skipSpecialTokens: true)`: ids whose string is a special token's content.
    private let skipped: [Bool]
    private let lock = NSLock()
    private let sharedState = BPEState()

    /// Max id + 1 over the vocabulary and the added tokens.
    public let vocabularySize: Int
    /// Ids of the added tokens marked `special`.
    public let specialTokenIDs: Set<Int32>

    /// Loads `tokenizer.json`, or `tokenizer.json` inside the directory `url`.
    public convenience init(url: URL) throws {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir)
        let file = isDir.boolValue ? url.appendingPathComponent("tokenizer.json") : url
        guard exists, FileManager.default.fileExists(atPath: file.path) else {
            throw TokenizerError("\(file.path): no such file; expected an HF tokenizer.json or a directory containing one")
        }
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw TokenizerError("\(file.path): cannot read (\(error.localizedDescription))")
        }
        try self.init(json: data, source: file.path)
    }

    /// Parses tokenizer.json contents; `source` names them in error messages.
    public init(json data: Data, source: String) throws {
        let def = try TokenizerDefinition(json: data, source: source)
        vocab = def.vocab
        preTokenizer = def.preTokenizer

        // Added tokens, with HF's id assignment (AddedVocabulary::add_tokens, one token at a time).
        var ids: [String: Int32] = [:]
        var byID: [Int32: AddedToken] = [:]
        var specialContents: Set<String> = []
        var order: [String] = []
        var maxAdded: Int32?
        for var t in def.addedTokens where !t.content.isEmpty {
            if t.special { specialContents.insert(t.content) }
            let id: Int32
            if let known = ids[t.content] ?? def.vocab[t.content] {
                id = known
            } else if let m = maxAdded, Int(m) >= def.vocab.count || def.vocab.isEmpty {
                id = m + 1
            } else {
                id = Int32(def.vocab.count)
            }
            t.id = id
            if ids[t.content] == nil { order.append(t.content) }
            ids[t.content] = id
            byID[id] = t
            maxAdded = max(maxAdded ?? id, id)
        }
        addedIDs = ids
        added = AddedTokenMatcher(order.compactMap { content in
            guard let id = ids[content], var t = byID[id] else { return nil }
            t.content = content
            return t
        })

        var size = 0
        for id in def.vocab.values { size = max(size, Int(id) + 1) }
        for id in ids.values { size = max(size, Int(id) + 1) }
        guard size <= 1 << 24 else {
            throw TokenizerError("\(source): token id \(size - 1) is implausibly large (ids index dense tables here)")
        }
        vocabularySize = size
        var strings = [String?](repeating: nil, count: size)
        for (token, id) in def.vocab { strings[Int(id)] = token }
        for (id, t) in byID { strings[Int(id)] = t.content }
        tokenStrings = strings
        specialTokenIDs = Set(specialContents.compactMap { ids[$0] })
        skipped = strings.map { s in s.map { specialContents.contains($0) } ?? false }

        var bytes: [UInt8] = []
        var starts: [Int32] = [0]
        starts.reserveCapacity(size + 1)
        for s in strings {
            if let s { bytes.append(contentsOf: ByteLevel.decodedBytes(of: s)) }
            starts.append(Int32(bytes.count))
        }
        decodeBytes = bytes
        decodeStart = starts

        // The BPE model on ids.
        let byteSymbol = (0..<256).map { b in def.vocab[ByteLevel.string(of: [UInt8(b)])] ?? -1 }
        var merges: [(Int32, Int32, Int32)] = []
        merges.reserveCapacity(def.merges.count)
        for (rank, (a, b)) in def.merges.enumerated() {
            for t in [a, b, a + b] where def.vocab[t] == nil {
                throw TokenizerError("\(source): model.merges[\(rank)] (\(a.debugDescription), \(b.debugDescription)): \(t.debugDescription) is not in the vocabulary")
            }
            merges.append((def.vocab[a] ?? -1, def.vocab[b] ?? -1, def.vocab[a + b] ?? -1))
        }
        var wholeWords: [[UInt8]: Int32]?
        if def.ignoreMerges {
            var w: [[UInt8]: Int32] = [:]
            for (token, id) in def.vocab { if let b = ByteLevel.bytes(of: token) { w[b] = id } }
            wholeWords = w
        }
        model = BPEModel(byteSymbol: byteSymbol, merges: MergeTable(merges), wholeWords: wholeWords,
                         unk: def.unkToken.flatMap { def.vocab[$0] }, fuseUnk: def.fuseUnk)
    }

    /// Token ids of `text`, as HF `encode(text, add_special_tokens=False)`: added and special
    /// tokens written in the text are recognised; nothing (no BOS/EOS) is ever added.
    public func encode(_ text: String) -> [Int32] {
        var text = text
        return text.withUTF8 { buf in
            let locked = lock.try()
            defer { if locked { lock.unlock() } }
            return encode(buf, state: locked ? sharedState : BPEState())
        }
    }

    private func encode(_ buf: UnsafeBufferPointer<UInt8>, state: BPEState) -> [Int32] {
        guard let base = buf.baseAddress, !buf.isEmpty else { return [] }
        // Stretches of text (negative: -1 - added token id) in order, then pieces of each stretch.
        var segments: [(start: Int, end: Int)] = []
        added.split(base, 0..<buf.count, text: { segments.append(($0.lowerBound, $0.upperBound)) },
                    token: { segments.append((-1 - Int($0), 0)) })
        var out: [Int32] = []
        out.reserveCapacity(buf.count / 3 + 16)
        let model = self.model, cache = state.cache
        var ends = state.ends
        state.ends = []
        for segment in segments {
            if segment.start < 0 {
                out.append(Int32(-1 - segment.start))
            } else if preTokenizer.isFlat {
                ends.removeAll(keepingCapacity: true)
                preTokenizer.appendEnds(base, segment.start..<segment.end, &ends)
                var start = segment.start
                for end in ends {
                    model.encodePiece(base + start, end - start, cache, state, &out)
                    start = end
                }
            } else {
                preTokenizer.run(buf, segment.start..<segment.end) { pieceBuf, piece in
                    guard let p = pieceBuf.baseAddress else { return }
                    model.encodePiece(p + piece.lowerBound, piece.count, cache, state, &out)
                }
            }
        }
        state.ends = ends
        return out
    }

    /// Text of `ids`, as HF `decode(ids, skip_special_tokens)` with the ByteLevel decoder: the
    /// tokens' bytes joined, invalid UTF-8 replaced by U+FFFD. Unknown ids are skipped (as HF does).
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && Int(id) < vocabularySize {
            if skipSpecialTokens && skipped[Int(id)] { continue }
            bytes.append(contentsOf: decodeBytes[Int(decodeStart[Int(id)])..<Int(decodeStart[Int(id) + 1])])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The token string of `id` (byte-level form for vocabulary tokens; content for added tokens).
    public func token(_ id: Int32) -> String? {
        id >= 0 && Int(id) < vocabularySize ? tokenStrings[Int(id)] : nil
    }

    /// The id of a token string (byte-level form), added tokens first.
    public func id(_ token: String) -> Int32? {
        addedIDs[token] ?? vocab[token]
    }

    /// Raw UTF-8 bytes a token id stands for (after byte-level decoding); special tokens give their content's bytes.
    public func bytes(_ id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < vocabularySize else { return [] }
        return Array(decodeBytes[Int(decodeStart[Int(id)])..<Int(decodeStart[Int(id) + 1])])
    }
}
