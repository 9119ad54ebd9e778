// Real MPI jobs (the MPI build only: `swift test --traits MPI`): mpirun on this machine's loopback.

#if MPI
import Collective
import Foundation
import TestSupport
import Testing

/// Runs `mpirun -np N rondo args…` (as root in CI containers, oversubscribed on small machines).
func mpirun(_ ranks: Int, _ args: [String]) throws -> ProcessResult {
    try runProgram(URL(fileURLWithPath: "/usr/bin/env"),
                   ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", String(ranks), rondoExecutable.path] + args)
}

@Suite(.serialized) struct MPIJobTests {
    /// An N-rank sum equals its single-process emulation bit for bit, and repeats run after run.
    @Test(arguments: [2, 3]) func rankSumEqualsItsEmulation(ranks: Int) throws {
        let args = ["collective-check", "--elements", "100003", "--seed", "11"]
        let a = try mpirun(ranks, args), b = try mpirun(ranks, args)
        #expect(a.status == 0, "\(a.stderr)")
        let emulated = try runRondo(args + ["--emulate-ranks", String(ranks)])
        let digest = { (s: String) in s.split(separator: ",").first { $0.contains("sha256") } }
        #expect(digest(a.stdout) != nil)
        #expect(digest(a.stdout) == digest(emulated.stdout))
        #expect(a.stdout == b.stdout)
    }
}
#endif
