// `rondo bench buffer`.

import ArgumentParser
import Foundation
import Rollouts

struct BenchBuffer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buffer",
        abstract: "Rollout-buffer write and read throughput (MB/s of JSON) and compression ratio.",
        discussion: "Run with --records N and 10·N to see that memory stays flat as the buffer grows.")

    @Option(help: "Sample records to write and read back.")
    var records = 100_000
    @Option(help: "zstd level.")
    var level: Int32 = 1
    @Option(help: "zstd worker threads (0 = compress on the writing thread).")
    var workers = 2
    @Option(help: "Directory for the buffer (default: a temporary one, removed afterwards).")
    var dir: String?

    func run() throws {
        var o = BufferBenchOptions()
        o.records = records; o.level = level; o.workers = workers; o.directory = dir.map { URL(fileURLWithPath: $0) }
        let progress = ProgressLine()
        let line = try BufferBench.run(o, progress: progress.update)
        progress.finish()
        print(line)
    }
}
