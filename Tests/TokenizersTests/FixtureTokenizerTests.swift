// Every tokenizer case of the fixtures, against HF tokenizers 0.23.3: the oracle's GPT-2-style
// tokenizer (Tests/Fixtures/oracle, README "Tokenizer") and the Llama-3-style one
// (Tests/Fixtures/tokenizer-llama3). Ids, token strings, decode and decode without special tokens
// must match exactly.

import Foundation
import TestSupport
import Testing
import Tokenizers

struct TokenizerCase: CustomTestStringConvertible, Sendable {
    let text: String
    let ids: [Int32]
    let tokens: [String]
    let decoded: String
    let decodedSkipSpecial: String?

    var testDescription: String { text.debugDescription }

    static func load(_ url: URL, path: [String]) throws -> [TokenizerCase] {
        var node: Any = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        for key in path { node = try #require((node as? [String: Any])?[key]) }
        let items = try #require(node as? [[String: Any]])
        return try items.map { item in
            TokenizerCase(
                text: try #require(item["text"] as? String),
                ids: try #require(item["ids"] as? [Int]).map(Int32.init),
                tokens: try #require(item["tokens"] as? [String]),
                decoded: try #require(item["decoded"] as? String),
                decodedSkipSpecial: item["decoded_skip_special_tokens"] as? String)
        }
    }
}

private let oracleCases = (try? TokenizerCase.load(Fixtures.cases, path: ["cases", "tokenizer", "items"])) ?? []
private let llama3Cases = (try? TokenizerCase.load(
    Fixtures.tokenizerLlama3.appendingPathComponent("cases.json"), path: ["items"])) ?? []

private let oracleTokenizer = Result { try Tokenizer(url: Fixtures.policy.appendingPathComponent("tokenizer.json")) }
private let llama3Tokenizer = Result { try Tokenizer(url: Fixtures.tokenizerLlama3.appendingPathComponent("tokenizer.json")) }

private func check(_ c: TokenizerCase, _ tokenizer: Tokenizer, sourceLocation: SourceLocation = #_sourceLocation) {
    let ids = tokenizer.encode(c.text)
    #expect(ids == c.ids, "encode \(c.text.debugDescription)", sourceLocation: sourceLocation)
    #expect(c.ids.map { tokenizer.token($0) ?? "?" } == c.tokens, sourceLocation: sourceLocation)
    #expect(c.tokens.map { tokenizer.id($0) ?? -1 } == c.ids, sourceLocation: sourceLocation)
    #expect(tokenizer.decode(c.ids) == c.decoded, sourceLocation: sourceLocation)
    #expect(tokenizer.decode(c.ids) == c.text, "round trip", sourceLocation: sourceLocation)
    if let skip = c.decodedSkipSpecial {
        #expect(tokenizer.decode(c.ids, skipSpecialTokens: true) == skip, sourceLocation: sourceLocation)
    }
    let joined = c.ids.flatMap { tokenizer.bytes($0) }
    #expect(String(decoding: joined, as: UTF8.self) == c.decoded, "bytes(_:) joined", sourceLocation: sourceLocation)
}

@Suite struct OracleTokenizerTests {
    @Test func casesAreLoaded() throws {
        #expect(oracleCases.count == 23)
        let t = try oracleTokenizer.get()
        #expect(t.vocabularySize == 320)
        #expect(t.specialTokenIDs == [0, 1, 2])
        #expect(t.id("<|bos|>") == 0 && t.id("<|eos|>") == 1 && t.id("<|pad|>") == 2)
    }

    @Test(arguments: oracleCases)
    func item(_ c: TokenizerCase) throws {
        check(c, try oracleTokenizer.get())
    }
}

@Suite struct Llama3TokenizerTests {
    @Test func casesAreLoaded() throws {
        #expect(llama3Cases.count == 19)
        let t = try llama3Tokenizer.get()
        #expect(t.vocabularySize == 400)
        #expect(t.specialTokenIDs == [0, 1, 2])
    }

    @Test(arguments: llama3Cases)
    func item(_ c: TokenizerCase) throws {
        check(c, try llama3Tokenizer.get())
    }

    /// The tokenizer is shared: concurrent encodes (one on the shared cache, others on private ones)
    /// give the same ids.
    @Test func concurrentEncodes() async throws {
        let t = try llama3Tokenizer.get()
        let text = llama3Cases.map(\.text).joined(separator: " | ")
        let expected = t.encode(text)
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 { group.addTask { (0..<20).allSatisfy { _ in t.encode(text) == expected } } }
            for await ok in group { #expect(ok) }
        }
    }
}
