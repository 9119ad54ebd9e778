// `rondo bench tokenize`.

import ArgumentParser
import Foundation
import Tokenizers

struct BenchTokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode throughput (bytes/s, tokens/s) of a tokenizer.json on one text.",
        discussion: """
            One encode call on the whole text per repeat, single-threaded, after one warm-up run; \
            ms is the median. Default text: Tests/Fixtures/oracle/tokenizer_corpus.txt repeated to \
            at least 1 MiB.
            """)

    @Option(help: "tokenizer.json, or a model directory containing it.")
    var tokenizer: String
    @Option(help: "Text file to encode (as is).")
    var input: String?
    @Option(name: .customLong("repeat"), help: "Timed runs.")
    var repeats = 5

    func run() throws {
        var o = TokenizeBenchOptions(tokenizer: URL(fileURLWithPath: tokenizer))
        o.input = input.map { URL(fileURLWithPath: $0) }
        o.repeats = repeats
        print(try TokenizeBench.run(o))
    }
}
