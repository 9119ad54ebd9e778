// The `rondo` command line: parses options and calls one library entry point per command.

import ArgumentParser
import Foundation
import Model
import Training

@main
struct Rondo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rondo",
        abstract: "Online DPO and iterative RLHF campaigns on a CPU.",
        discussion: """
            Models are Hugging Face directories (config.json + model.safetensors [+ tokenizer.json]).
            Data is JSON lines. Every command exits non-zero with a message naming the file, line or
            tensor when its input is wrong.
            """,
        subcommands: [
            Start.self, Resume.self, Status.self, Replay.self, Report.self, Inspect.self,
            Generate.self, SFT.self, RM.self, DPO.self, PolicyLoss.self, Logprobs.self, Tokenize.self, Template.self, Init.self, Bench.self,
            ImportGGUF.self, ExportGGUF.self, Merge.self, Serve.self, CollectiveCheckCommand.self,
        ])
}

/// Options shared by commands that compute.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Threads for matrix products and kernels (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }
}

/// Prints a summary line to standard error.
func report(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

/// Progress on standard error: one line rewritten in place on a terminal; otherwise a plain line
/// every `every`-th update (so logs of long runs stay readable).
final class ProgressLine {
    private let tty = isatty(STDERR_FILENO) != 0
    private let every: Int
    private var count = 0
    private var shown = false

    init(every: Int = 10) { self.every = max(1, every) }

    func update(_ text: String) {
        count += 1
        if tty {
            FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
            shown = true
        } else if count % every == 0 {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    /// Ends the in-place line so later output starts on a fresh line.
    func finish() {
        if shown { FileHandle.standardError.write(Data("\n".utf8)) }
        shown = false
    }
}
