// Behaviour beyond the fixtures, on tiny tokenizer.json files built here: both merge formats,
// merge order, ignore_merges, added-token options, prefix space, Digits, unk, decoding invalid
// UTF-8, loading from a directory, and the errors for unsupported tokenizers. Expected ids were
// produced with HF tokenizers 0.23.3 on the same JSON.

import Foundation
import TestSupport
import RondoSupport
import Testing
@testable import Tokenizers

/// The GPT-2 byte-to-character table, written independently of the library's.
private let alphabet: [String] = {
    var printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
    var chars = printable
    var n = 0
    for b in 0..<256 where !printable.contains(b) {
        printable.append(b)
        chars.append(256 + n)
        n += 1
    }
    var table = [String](repeating: "", count: 256)
    for (b, c) in zip(printable, chars) { table[b] = String(Unicode.Scalar(UInt32(c))!) }
    return table
}()

private let gpt2PreTokenizer: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]

/// A tokenizer.json whose vocabulary is the 256 byte characters (id = byte value, minus `missing`)
/// followed by `extra` (ids 256, 257, …).
private func tinyJSON(merges: [Any] = [], extra: [String] = [], added: [[String: Any]] = [],
                      preTokenizer: [String: Any] = gpt2PreTokenizer, model: [String: Any] = [:],
                      root: [String: Any] = [:], missing: Set<String> = []) -> Data {
    var vocab: [String: Int] = [:]
    for b in 0..<256 where !missing.contains(alphabet[b]) { vocab[alphabet[b]] = b }
    for (i, t) in extra.enumerated() { vocab[t] = 256 + i }
    var m: [String: Any] = ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "fuse_unk": false,
                            "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges]
    m.merge(model) { $1 }
    var j: [String: Any] = [
        "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
        "normalizer": NSNull(), "pre_tokenizer": preTokenizer, "post_processor": NSNull(),
        "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true], "model": m,
    ]
    j.merge(root) { $1 }
    return try! JSONSerialization.data(withJSONObject: j)
}

private func tiny(merges: [Any] = [], extra: [String] = [], added: [[String: Any]] = [],
                  preTokenizer: [String: Any] = gpt2PreTokenizer, model: [String: Any] = [:],
                  missing: Set<String> = []) throws -> Tokenizer {
    try Tokenizer(json: tinyJSON(merges: merges, extra: extra, added: added, preTokenizer: preTokenizer,
                                 model: model, missing: missing), source: "tiny")
}

private func addedToken(_ id: Int, _ content: String, special: Bool = true, normalized: Bool = false,
                        lstrip: Bool = false, rstrip: Bool = false, singleWord: Bool = false) -> [String: Any] {
    ["id": id, "content": content, "single_word": singleWord, "lstrip": lstrip, "rstrip": rstrip,
     "normalized": normalized, "special": special]
}

private func sequence(_ steps: [[String: Any]]) -> [String: Any] { ["type": "Sequence", "pretokenizers": steps] }

/// Expects loading `json` to throw a TokenizerError whose message contains every fragment.
private func expectRefused(_ json: Data, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try Tokenizer(json: json, source: "tiny.json")
        Issue.record("loaded, expected an error containing \(fragments)", sourceLocation: sourceLocation)
    } catch let e as TokenizerError {
        for f in fragments + ["tiny.json"] {
            #expect(e.description.contains(f), "\(e.description) lacks \(f.debugDescription)", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct BPETests {
    @Test func bothMergeFormatsGiveTheSameIDs() throws {
        let pairs = try tiny(merges: [["a", "b"], ["ab", "c"], ["a", "a"]], extra: ["ab", "abc", "aa"])
        let strings = try tiny(merges: ["a b", "ab c", "a a"], extra: ["ab", "abc", "aa"])
        for t in [pairs, strings] {
            #expect(t.encode("abcab") == [257, 256])
            #expect(t.encode("aaa") == [258, 97])  // leftmost first among equal ranks
        }
    }

    @Test func malformedMergesAreRefused() {
        expectRefused(tinyJSON(merges: ["a b c"], extra: ["ab"]), ["merges[0]", "two tokens"])
        expectRefused(tinyJSON(merges: [["a", "q"]]), ["merges[0]", "\"aq\" is not in the vocabulary"])
    }

    @Test func ignoreMergesMapsWholeVocabularyPieces() throws {
        let on = try tiny(merges: [["a", "b"]], extra: ["ab", "abc"], model: ["ignore_merges": true])
        #expect(on.encode("abc") == [257])
        #expect(on.encode("abc abc") == [257, 32, 256, 99])
        let off = try tiny(merges: [["a", "b"]], extra: ["ab", "abc"])
        #expect(off.encode("abc") == [256, 99])
    }

    @Test func missingBytesBecomeUnkOrAreDropped() throws {
        let unk = try tiny(extra: ["<unk>"], model: ["unk_token": "<unk>"], missing: ["z", "y"])
        #expect(unk.encode("azzyb") == [97, 256, 256, 256, 98])
        let fused = try tiny(extra: ["<unk>"], model: ["unk_token": "<unk>", "fuse_unk": true], missing: ["z", "y"])
        #expect(fused.encode("azzyb") == [97, 256, 98])
        let dropped = try tiny(missing: ["z"])
        #expect(dropped.encode("azb") == [97, 98])
    }

    /// More distinct pieces than the cache holds: it is cleared on the way, and the ids stay those
    /// of each word encoded alone.
    @Test func cacheOverflow() throws {
        let t = try Tokenizer(url: Fixtures.tokenizerLlama3)
        let count = WordCache.maxEntries + 20_000
        let words = (0..<count).map { i -> String in
            var i = i, w = " "
            repeat { w.unicodeScalars.append(Unicode.Scalar(UInt8(97 + i % 26))); i /= 26 } while i > 0
            return w
        }
        let ids = t.encode(words.joined())
        let fresh = try Tokenizer(url: Fixtures.tokenizerLlama3)
        var expected: [Int32] = []
        for w in words { expected += fresh.encode(w) }
        #expect(ids == expected)
        #expect(t.encode(words.joined()) == expected)
    }

    /// The quadratic loop (short pieces) and the heap (long pieces) pick the same merges.
    @Test func shortAndLongMergeLoopsAgree() throws {
        let t = try Tokenizer(url: Fixtures.policy)
        let state = BPEState()
        var rng = SystemRandomNumberGenerator()
        let letters = Array("he lowrdit s".utf8)
        for trial in 0..<300 {
            let n = 2 + trial % 120
            let bytes = (0..<n).map { _ in letters[Int.random(in: 0..<letters.count, using: &rng)] }
            let initial = bytes.map { t.model.byteSymbol[Int($0)] }
            var short = initial, long = initial
            t.model.mergeShort(&short, state)
            t.model.mergeLong(&long, state)
            #expect(short == long, "\(String(decoding: bytes, as: UTF8.self).debugDescription)")
        }
    }

    @Test func longPiecesAreNotCachedButEncodeTheSame() throws {
        let t = try Tokenizer(url: Fixtures.policy)
        let word = String(repeating: "the", count: 200)  // one 600-byte piece: heap loop, not cached
        #expect(t.encode(word) == Array(repeating: 281, count: 200))  // HF: 200 × "the"
        #expect(t.decode(t.encode(word)) == word)
    }
}

@Suite struct AddedTokenTests {
    @Test func lstripRstripAndSingleWord() throws {
        let t = try tiny(added: [
            addedToken(256, "<m>", lstrip: true, rstrip: true),
            addedToken(257, "ab", special: false, normalized: true, singleWord: true),
            addedToken(258, "<mask>", special: false, singleWord: true),
        ])
        #expect(t.encode("x <m> y") == [120, 256, 121])
        #expect(t.encode("x\t<m>\u{2000}y") == [120, 256, 121])
        #expect(t.encode("ab cab ab") == [257, 32, 99, 97, 98, 32, 257])
        #expect(t.encode("ab_ ab") == [97, 98, 95, 32, 257])
        #expect(t.encode("<mask>, <mask>- \u{25CC}\u{0330}<mask>")
                == [258, 44, 32, 258, 45, 32, 226, 151, 140, 204, 176, 60, 109, 97, 115, 107, 62])
        #expect(t.encode("<m><m>  <m>") == [256, 256, 256])
    }

    @Test func longestMatchAndTwoPasses() throws {
        let longest = try tiny(added: [addedToken(256, "<a>"), addedToken(257, "<a><b>")])
        #expect(longest.encode("<a><b><a>") == [257, 256])
        // "b" (not normalized) is matched before "ab" (normalized) is looked for; "b" keeps its vocab id.
        let passes = try tiny(added: [addedToken(256, "ab", special: false, normalized: true), addedToken(257, "b")])
        #expect(passes.encode("ab") == [97, 98])
        #expect(passes.id("ab") == 256 && passes.id("b") == 98)
    }

    @Test func idsAreAssignedAsHFDoes() throws {
        // The file says 500 and 400; HF gives the next free ids after the vocabulary (256, 257).
        let t = try tiny(added: [addedToken(500, "<x>"), addedToken(400, "<y>", special: false, normalized: true)])
        #expect(t.id("<x>") == 256 && t.id("<y>") == 257 && t.vocabularySize == 258)
        #expect(t.encode("a<x>b<y>") == [97, 256, 98, 257])
        #expect(t.specialTokenIDs == [256])
        #expect(t.decode([97, 256, 98, 257], skipSpecialTokens: true) == "ab<y>")
    }
}

@Suite struct PreTokenizerTests {
    @Test func byteLevelPrefixSpaceIsAddedPerStretch() throws {
        let t = try tiny(merges: [["Ġ", "h"]], extra: ["Ġh"], added: [addedToken(257, "<s>")],
                         preTokenizer: ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true])
        #expect(t.encode("hi<s>hi <s> hi") == [256, 105, 257, 256, 105, 32, 257, 256, 105])
    }

    @Test func digits() throws {
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]
        let individual = try tiny(merges: [["1", "2"]], extra: ["12"],
                                  preTokenizer: sequence([["type": "Digits", "individual_digits": true], byteLevel]))
        #expect(individual.encode("12") == [49, 50])
        let contiguous = try tiny(merges: [["1", "2"]], extra: ["12"],
                                  preTokenizer: sequence([["type": "Digits", "individual_digits": false], byteLevel]))
        #expect(contiguous.encode("a12b") == [97, 256, 98])
    }

    /// Swift Regex (the fallback for unknown Split patterns) and the hand-written scanners split
    /// the same way on both built-in patterns.
    @Test(arguments: [PatternScanner.gpt2Pattern, PatternScanner.llama3Pattern, PatternScanner.qwen2Pattern])
    func regexFallbackMatchesScanner(pattern: String) throws {
        let scanner = try #require(PatternScanner.forRegex(pattern))
        let regex = try RegexSplitter(pattern: pattern)
        var texts = [
            "Hello, World! it's WE'LL i'M they've", "  leading\n\n\n  trailing   ", "a\r\n\r\n b\t\tc \n x",
            "x1234567y 12345+678=13023", "price: $3.50 (approx.) 100%!!!", "snake_case_name = foo(bar)\n\treturn 42;",
            "h\u{e9}llo w\u{f6}rld \u{2713} \u{65e5}\u{672c}\u{8a9e} \u{1F600}\u{1F389} \u{0661}\u{0662}\u{0663}\u{0664}",
            "e\u{301} \u{a0}nbsp\u{2003}em\u{3000}ideo ...abc  ?!x", "\u{85}next\u{2028}line", "", " ", "'", "'s", "a'",
        ]
        var rng = SystemRandomNumberGenerator()
        let pool = Array("ab Z9'sStTrevlLmd \n\r\t.,!-_\u{e9}\u{a0}\u{2003}\u{0661}\u{4e00}\u{1F600}\u{301}")
        for _ in 0..<300 { texts.append(String((0..<Int.random(in: 1...24, using: &rng)).map { _ in pool.randomElement(using: &rng)! })) }
        for text in texts {
            var t = text
            let (a, b) = t.withUTF8 { buf -> ([Range<Int>], [Range<Int>]) in
                guard let p = buf.baseAddress else { return ([], []) }
                var a: [Range<Int>] = [], b: [Range<Int>] = []
                scanner.split(p, 0..<buf.count) { a.append($0) }
                regex.split(p, 0..<buf.count) { b.append($0) }
                return (a, b)
            }
            #expect(a == b, "\(text.debugDescription)")
        }
    }

    /// The class table (with its blocks filled without property lookups) agrees with the Unicode
    /// properties of every BMP scalar; spot-check a few classes.
    @Test func characterClassTable() {
        var mismatches = 0
        for v in 0..<0x10000 where CharClass.bmp[v] != (Unicode.Scalar(UInt32(v)).map(CharClass.compute) ?? 0) {
            mismatches += 1
        }
        #expect(mismatches == 0)
        #expect(CharClass.of(0x1F600, CharClass.bmp) == 0)  // 😀 So
        #expect(CharClass.of(0x20000, CharClass.bmp) == CharClass.letter | CharClass.word)  // CJK Ext. B
        #expect(CharClass.of(0x85, CharClass.bmp) == CharClass.space)
        #expect(CharClass.of(0x1C, CharClass.bmp) == 0)  // not White_Space (Python's isspace says yes)
        #expect(CharClass.of(0x2160, CharClass.bmp) & CharClass.number != 0)  // Ⅰ Nl
    }

    @Test func unknownSplitRegexRunsOnSwiftRegex() throws {
        let split: [String: Any] = ["type": "Split", "pattern": ["Regex": "[0-9]+|[a-z]+"], "behavior": "Isolated", "invert": false]
        let t = try tiny(merges: [["a", "b"], ["1", "2"]], extra: ["ab", "12"],
                         preTokenizer: sequence([split, ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]]))
        #expect(t.encode("ab12-ab") == [256, 257, 45, 256])
    }
}

@Suite struct DecodeAndLoadTests {
    @Test func invalidUTF8DecodesToReplacementCharacters() throws {
        let t = try Tokenizer(url: Fixtures.policy)
        let continuation = try #require(t.id(alphabet[0x80]))
        let lead = try #require(t.id(alphabet[0xC3]))
        #expect(t.bytes(continuation) == [0x80])
        #expect(t.decode([continuation]) == "\u{FFFD}")
        #expect(t.decode([lead, t.id("a")!]) == "\u{FFFD}a")
        #expect(t.decode([lead, t.id(alphabet[0xA9])!]) == "\u{e9}")  // split across tokens, joined first
        #expect(t.decode([t.id("a")!, 9999, -1]) == "a")  // unknown ids are skipped
    }

    @Test func specialTokens() throws {
        let t = try Tokenizer(url: Fixtures.policy)
        #expect(t.bytes(0) == Array("<|bos|>".utf8))
        #expect(t.token(1) == "<|eos|>")
        #expect(t.decode([0, 223, 1, 2], skipSpecialTokens: true) == " ")
        #expect(t.token(320) == nil && t.bytes(320) == [])
    }

    @Test func directoryAndFileURLs() throws {
        let dir = try Tokenizer(url: Fixtures.policy)
        let file = try Tokenizer(url: Fixtures.policy.appendingPathComponent("tokenizer.json"))
        #expect(dir.encode("hello world") == file.encode("hello world"))
        #expect(throws: TokenizerError.self) { try Tokenizer(url: Fixtures.oracle.appendingPathComponent("nope")) }
        #expect(throws: TokenizerError.self) { try Tokenizer(url: Fixtures.oracle) }  // no tokenizer.json there
    }

    @Test func unsupportedTokenizersAreRefused() {
        expectRefused(tinyJSON(model: ["type": "WordPiece"]), ["model type WordPiece"])
        expectRefused(tinyJSON(model: ["type": "Unigram"]), ["model type Unigram"])
        expectRefused(tinyJSON(root: ["normalizer": ["type": "NFC"]]), ["normalizer NFC"])
        expectRefused(tinyJSON(preTokenizer: ["type": "Metaspace", "replacement": "▁"]), ["pre_tokenizer Metaspace"])
        expectRefused(tinyJSON(preTokenizer: ["type": "Split", "pattern": ["Regex": " "], "behavior": "Isolated", "invert": false]),
                      ["no ByteLevel"])
        expectRefused(tinyJSON(preTokenizer: ["type": "Split", "pattern": ["Regex": "x"], "behavior": "Removed", "invert": false]),
                      ["behavior Removed"])
        expectRefused(tinyJSON(preTokenizer: sequence([["type": "Split", "pattern": ["Regex": "(?<=a"], "behavior": "Isolated", "invert": false], gpt2PreTokenizer])),
                      ["does not compile"])
        expectRefused(tinyJSON(root: ["decoder": ["type": "WordPiece"]]), ["decoder WordPiece"])
        expectRefused(tinyJSON(root: ["decoder": NSNull()]), ["decoder null"])
        let template: [String: Any] = [
            "type": "TemplateProcessing",
            "single": [["SpecialToken": ["id": "<s>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
            "pair": [["Sequence": ["id": "A", "type_id": 0]]], "special_tokens": [:],
        ]
        // A BOS template (Llama 3) loads: encode is add_special_tokens=False, so it adds nothing.
        let withTemplate = try? Tokenizer(json: tinyJSON(root: ["post_processor": template]), source: "tiny.json")
        #expect(withTemplate?.encode("ab") == [97, 98])
        expectRefused(tinyJSON(root: ["post_processor": ["type": "MysteryProcessing"]]), ["post_processor MysteryProcessing"])
        expectRefused(tinyJSON(root: ["truncation": ["max_length": 8]]), ["truncation"])
        expectRefused(tinyJSON(model: ["dropout": 0.1]), ["dropout"])
        expectRefused(Data("{".utf8), ["not valid JSON"])
    }
}

@Suite struct TokenizeJobTests {
    private func run(_ input: String, decode: Bool = false, skip: Bool = false) throws -> String {
        try withTemporaryDirectory { dir in
            let inURL = dir.appendingPathComponent("in.jsonl"), outURL = dir.appendingPathComponent("out.jsonl")
            try Data(input.utf8).write(to: inURL)
            _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
            var o = TokenizeOptions(tokenizer: Fixtures.policy)
            o.decode = decode
            o.skipSpecialTokens = skip
            let inH = try FileHandle(forReadingFrom: inURL), outH = try FileHandle(forWritingTo: outURL)
            defer { try? inH.close(); try? outH.close() }
            try TokenizeJob.run(o, input: inH, output: outH, inputName: "in.jsonl")
            return try String(contentsOf: outURL, encoding: .utf8)
        }
    }

    @Test func encodesAndDecodesLines() throws {
        #expect(try run("{\"text\": \"<|bos|>the cat<|eos|>\"}\n\n{\"text\": \"\"}") == "{\"ids\": [0, 281, 307, 265, 1]}\n{\"ids\": []}\n")
        #expect(try run("{\"ids\": [0, 281, 307, 265, 1]}\n", decode: true) == "{\"text\": \"<|bos|>the cat<|eos|>\"}\n")
        #expect(try run("{\"ids\": [0, 281, 201, 1]}\n", decode: true, skip: true) == "{\"text\": \"the\\n\"}\n")
    }

    @Test func jsonStringEscapes() {
        #expect(jsonString("a\"\\\n\r\t\u{1}\u{1F}\u{2028}\u{e9}") == #""a\"\\\n\r\t\u0001\u001f\u2028\#u{e9}""#)
    }

    @Test func errorsNameTheLine() {
        let cases = [
            ("{\"text\": \"a\"}\n{\"txt\": 1}\n", false, "in.jsonl:2: expected a string \"text\""),
            ("{\"ids\": [1]}\nnot json\n", true, "in.jsonl:2: not a JSON object"),
            ("{\"ids\": [320]}\n", true, "in.jsonl:1: token id 320"),
        ]
        // Lines before the bad one are written.
        #expect(throws: TokenizerError.self) {
            try withTemporaryDirectory { dir in
                let inURL = dir.appendingPathComponent("in.jsonl"), outURL = dir.appendingPathComponent("out.jsonl")
                try Data("{\"text\": \"a\"}\n{}\n".utf8).write(to: inURL)
                _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
                let inH = try FileHandle(forReadingFrom: inURL), outH = try FileHandle(forWritingTo: outURL)
                defer {
                    try? inH.close(); try? outH.close()
                    #expect((try? String(contentsOf: outURL, encoding: .utf8)) == "{\"ids\": [67]}\n")
                }
                try TokenizeJob.run(TokenizeOptions(tokenizer: Fixtures.policy), input: inH, output: outH)
            }
        }
        for (input, decode, message) in cases {
            let error = #expect(throws: TokenizerError.self) { try run(input, decode: decode) }
            #expect(error?.description.hasPrefix(message) == true, "\(error?.description ?? "")")
        }
    }
}
