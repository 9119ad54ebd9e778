// `rondo collective-check`: the MPI transport's self-test (hidden; CI runs it under mpirun).

import ArgumentParser
import Collective

struct CollectiveCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collective-check",
        abstract: "Sum seeded vectors across the ranks of an MPI job and print the sum's SHA-256.",
        discussion: """
            `mpirun -np N rondo collective-check` and `rondo collective-check --emulate-ranks N` print the same
            line when the gradient sum is reproducible on one process.
            """,
        shouldDisplay: false)

    @Option(help: "Elements per vector.") var elements = 100_003
    @Option(help: "Seed of the vectors.") var seed: UInt64 = 1
    @Option(help: "Emulate this many ranks in one process instead of using the job's ranks.") var emulateRanks: Int?

    func validate() throws {
        guard elements >= 1 else { throw ValidationError("--elements must be at least 1") }
        if let n = emulateRanks, n < 1 { throw ValidationError("--emulate-ranks must be at least 1") }
    }

    func run() throws {
        if let n = emulateRanks {
            print(CollectiveCheck.emulate(ranks: n, elements: elements, seed: seed))
        } else if let line = try CollectiveCheck.run(communicator: try worldCommunicator(), elements: elements, seed: seed) {
            print(line)
        }
    }
}
