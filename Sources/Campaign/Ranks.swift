// A campaign on N ranks (`mpirun -np N rondo start|resume|replay …`), data-parallel: every rank
// holds the policy and reference; a round's picked prompts are split over the ranks in contiguous
// blocks (`RankOrderSum.slice`), each rank samples and labels its block (the sampler's streams are
// keyed by the global prompt index, so a sample's bits do not depend on the rank that drew it), and
// the samples and scores are gathered in rank order — the single-process order. The reference
// log-probs are computed in batches of 16 rows whose boundaries do not depend on N (batch b on rank
// b mod N) and gathered, so each row has the single-process bits. The rows (DPO's pairs; PPO's
// values and advantages, one more forward pass) are computed on every rank from the same inputs.
// The update splits every micro-batch over the ranks (`GradientReducer.part`) and sums the gradients in
// rank order (`RankReducer`). Rank 0 alone writes the campaign directory; every rank calls every
// collective in the same order, and a failing rank aborts the job (`Communicator.abort`).

import Collective
import Foundation
import Kernels
import Model
import Sampling
import Training

/// The gradient sum of one rank of an MPI job: its own shard, then `sumInRankOrder`.
final class RankReducer: GradientReducer {
    let communicator: Communicator
    init(_ communicator: Communicator) { self.communicator = communicator }
    var ranks: Int { communicator.size }
    var localShards: [Int] { [communicator.rank] }
    func collect(_ gradients: UnsafeMutableBufferPointer<Float>, shard k: Int) throws {}
    func finish(_ gradients: UnsafeMutableBufferPointer<Float>) throws { try communicator.sumInRankOrder(gradients) }
    func companion() -> GradientReducer { self }

    func sum(_ values: [[Double]]) throws -> [Double] {
        let all = try communicator.allGather(doubleBytes(values[0]))
        return rankOrderSum(all.map(doubles))
    }
}

func doubleBytes(_ v: [Double]) -> [UInt8] { v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

func doubles(_ bytes: [UInt8]) -> [Double] {
    stride(from: 0, to: bytes.count - 7, by: 8).map { o in
        Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[o + $1]) << (8 * UInt64($1)) })
    }
}

/// The ranks round `r` ran on: its metrics.json's `dist/ranks` (1 when absent: one process).
func recordedRanks(_ store: CampaignStore, round r: Int) throws -> Int {
    try recordedCount(store, round: r, key: "dist/ranks") ?? 1
}

/// The threads per process round `r` ran with: its metrics.json's `threads` (nil in rounds
/// committed before the key existed).
func recordedThreads(_ store: CampaignStore, round r: Int) throws -> Int? {
    try recordedCount(store, round: r, key: "threads")
}

func recordedCount(_ store: CampaignStore, round r: Int, key: String) throws -> Int? {
    let url = store.roundURL(r).appendingPathComponent("metrics.json")
    return try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url))[key]?.int
}

extension Campaign {
    /// Whether this process writes the campaign directory (rank 0).
    var isWriter: Bool { communicator.rank == 0 }

    /// A stop request on any rank stops every rank at the same boundary.
    func stopAgreed() throws -> Bool {
        guard communicator.size > 1 else { return stop.isSet }
        return try communicator.allGather([stop.isSet ? 1 : 0]).contains([1])
    }

    /// Waits for every rank (a no-op on one process).
    func barrier() throws { if communicator.size > 1 { try communicator.barrier() } }

    /// This rank's block of `count` prompts.
    var promptShare: (Int) -> Range<Int> {
        let c = communicator
        return { RankOrderSum.slice(rank: c.rank, ranks: c.size, count: $0) }
    }

    /// Every rank's samples in rank order (each rank's in (prompt, sample) order).
    func gatherSamples(_ mine: [Sample]) throws -> [Sample] {
        guard communicator.size > 1 else { return mine }
        let enc = PropertyListEncoder()
        enc.outputFormat = .binary
        return try communicator.allGather(Array(enc.encode(mine))).flatMap {
            try PropertyListDecoder().decode([Sample].self, from: Data($0))
        }
    }

    /// Rows computed in batches of `batchSize` whose boundaries do not depend on the ranks: batch b is
    /// rank b mod N's (`compute(owns)` returns every row, empty where another rank owns it); every
    /// rank gets every row, the same bits as one process computing them all.
    func gatherBatches(batchSize: Int, _ compute: (_ owns: (Int) -> Bool) throws -> [[Float]]) throws -> [[Float]] {
        let c = communicator
        guard c.size > 1 else { return try compute { _ in true } }
        let mine = try compute { $0 % c.size == c.rank }
        let enc = PropertyListEncoder()
        enc.outputFormat = .binary
        let all = try c.allGather(Array(enc.encode(mine))).map { try PropertyListDecoder().decode([[Float]].self, from: Data($0)) }
        return mine.indices.map { all[($0 / batchSize) % c.size][$0] }
    }

    /// Every rank's scores in rank order.
    func gatherScores(_ mine: [Float]) throws -> [Float] {
        guard communicator.size > 1 else { return mine }
        return try communicator.allGather(doubleBytes(mine.map(Double.init))).flatMap { doubles($0).map(Float.init) }
    }

    /// After rank 0's commit (`outcome`; nil on the other ranks, which wait here until the round is
    /// on disk): every rank returns the same outcome, so an alarm stops them all.
    func commitOutcome(_ outcome: CampaignOutcome?, round r: Int) throws -> CampaignOutcome {
        guard communicator.size > 1 else { return outcome ?? .finished(rounds: r) }
        var code: [UInt8] = [0]
        if case .alarm? = outcome { code = [1] }
        let decided = try communicator.broadcast(code, root: 0)
        if let outcome { return outcome }
        return decided == [1] ? .alarm(round: r, message: "an alarm stopped the campaign (rank 0's log names it)") : .finished(rounds: r)
    }

    /// `dist/ranks`, `time/allreduce_s` (seconds this rank spent in collectives during the update:
    /// gradient and metric sums, stop checks, including waiting for slower ranks) and
    /// `dist/bytes_per_step` (bytes this rank sent per optimizer step); none on one process.
    func distributedMetrics(since before: CollectiveStatistics, steps: Double?) -> [(String, Double)] {
        guard communicator.size > 1 else { return [] }
        let now = communicator.statistics
        let bytes = Double(now.bytesSent - before.bytesSent)
        return [("dist/ranks", Double(communicator.size)), ("time/allreduce_s", now.seconds - before.seconds),
                ("dist/bytes_per_step", bytes / max(1, steps ?? 1))]
    }

    /// Runs `body`; on several ranks, a failure on this rank ends every rank (nothing is committed:
    /// rank 0 commits only after a barrier every rank reaches once its update is done).
    static func onRanks<T>(_ c: Communicator, _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            if c.size > 1 { c.abort(code: 1, message: "\(error)") }
            throw error
        }
    }
}
