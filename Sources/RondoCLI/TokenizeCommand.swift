// `rondo tokenize`.

import ArgumentParser
import Foundation
import Tokenizers

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode or decode JSON lines with an HF tokenizer.json (byte-level BPE).",
        discussion: """
            Reads standard input and writes standard output, one line per non-blank input line, \
            as lines arrive.

            Encode: {"text": "..."} → {"ids": [...]}, as HF encode(text, add_special_tokens=False): \
            special tokens written in the text are recognised; BOS/EOS are never added.

            --decode: {"ids": [...]} → {"text": "..."}; invalid UTF-8 becomes U+FFFD.
            """)

    @Option(help: "tokenizer.json, or a model directory containing it.")
    var tokenizer: String
    @Flag(help: "Decode {\"ids\": [...]} lines instead of encoding {\"text\": ...} lines.")
    var decode = false
    @Flag(help: "With --decode: drop special tokens.")
    var skipSpecialTokens = false

    func validate() throws {
        if skipSpecialTokens && !decode { throw ValidationError("--skip-special-tokens needs --decode") }
    }

    func run() throws {
        var o = TokenizeOptions(tokenizer: URL(fileURLWithPath: tokenizer))
        o.decode = decode
        o.skipSpecialTokens = skipSpecialTokens
        try TokenizeJob.run(o)
    }
}
