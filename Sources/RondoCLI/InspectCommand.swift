// `rondo inspect`.

import ArgumentParser
import Foundation
import Rollouts

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise, filter, export or compare rollout buffers.",
        discussion: """
            PATH is a buffer file (NAME.jsonl.zst, with NAME.manifest.json beside it), a round directory, or a \
            campaign directory with --round N. The summary shows counts, score statistics, response lengths, \
            length bias (correlation of length and score; chosen − rejected length gap), mode collapse \
            (distinct-1/2, duplicate responses per prompt), finish reasons, and the top and bottom examples \
            by score. Every read verifies the zstd checksum, each record and the manifest's SHA-256.

            --where takes conditions joined by 'and': FIELD OP VALUE, OP one of < <= > >= == !=, fields \
            score, length, prompt_index, sample_index, logprob_sum, logprob_mean, finish_reason, labeller.
            Example: rondo inspect run/rounds/000003 --where 'score < 0 and length > 20'

            A round judged pairwise (labeller.mode: pairwise) keeps each asked pair of samples as two \
            comparison lines, one per order; the summary counts the pairs asked, kept (both orders prefer \
            the same sample), ties, order disagreements and unjudged (an unparseable reply). \
            --comparisons OUTCOME lists them, one line per pair: all, kept, tie, order_disagreement or \
            unjudged; with --export jsonl, their comparison lines (prompts, replies, verdicts). With \
            --where, a pair is counted and listed when both its samples match.
            Example: rondo inspect run --round 2 --comparisons order_disagreement
            """)

    @Argument(help: "Buffer file, round directory, or campaign directory.")
    var path: String
    @Option(parsing: .unconditional, help: "Round to read when PATH is a campaign directory.")
    var round: Int?
    @Option(parsing: .unconditional, help: "Examples to show at each end of the score ranking.")
    var show = 3
    @Option(name: .customLong("where"), help: "Only records matching this condition (see above).")
    var condition: String?
    @Option(help: "Write the matching sample records instead of a summary (format: jsonl); with --comparisons, the listed pairs' comparison lines.")
    var export: String?
    @Flag(help: "Print the summary as one JSON object.")
    var json = false
    @Flag(help: "Read up to the first damage instead of failing, and say how many records were kept.")
    var salvage = false
    @Option(help: "Compare PATH's summary with this second buffer, side by side.")
    var diff: String?
    @Option(help: "List a pairwise-judged round's asked pairs instead of a summary: all, kept, tie, order_disagreement or unjudged (see above).")
    var comparisons: String?

    /// The outcomes --comparisons lists.
    var outcomes: Set<JudgedPair.Outcome>? {
        guard let comparisons else { return nil }
        if comparisons == "all" { return Set(JudgedPair.Outcome.allCases) }
        return JudgedPair.Outcome(rawValue: comparisons).map { [$0] }
    }

    func validate() throws {
        if let export, export != "jsonl" { throw ValidationError("--export supports 'jsonl' only") }
        guard show >= 0 else { throw ValidationError("--show must be ≥ 0") }
        if let round, round < 0 { throw ValidationError("--round must be ≥ 0 (got \(round)); `rondo status DIR` lists the rounds") }
        if let comparisons {
            let names = ["all"] + JudgedPair.Outcome.allCases.map(\.rawValue)
            guard outcomes != nil else { throw ValidationError("--comparisons '\(comparisons)': expected one of \(names.joined(separator: ", "))") }
            if diff != nil { throw ValidationError("--comparisons lists one buffer's pairs; it does not go with --diff") }
            if json { throw ValidationError("--comparisons with --json: use --export jsonl for the comparison lines as JSON") }
        }
    }

    func run() throws {
        var o = InspectOptions(path: URL(fileURLWithPath: path))
        o.round = round; o.show = show; o.filter = condition; o.export = export != nil
        o.json = json; o.salvage = salvage; o.diffWith = diff.map { URL(fileURLWithPath: $0) }
        o.comparisons = outcomes
        let (out, notes) = try InspectJob.run(o)
        if !notes.isEmpty { FileHandle.standardError.write(Data(notes.utf8)) }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
