// `rondo bench buffer`: write and read throughput of rollout buffers on synthetic records.
// MB/s counts uncompressed JSON bytes. Records look like a campaign's: a 40-token prompt with its
// text, a 64-token response with text, per-token sampling and reference log-probs, a score.

import Foundation
import RondoSupport

public struct BufferBenchOptions: Sendable {
    public var records = 100_000
    public var level: Int32 = 1
    public var workers = 2
    public var directory: URL?
    public init() {}
}

public enum BufferBench {
    /// A deterministic synthetic record (SplitMix64 on the record index).
    public static func syntheticRecord(_ i: Int) -> SampleRecord {
        var state = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 1
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let words = ["the", "cat", "sat", "on", "a", "mat", "12", "+", "35", "=", "47", "answer", "is", "so"]
        func text(_ n: Int) -> String { (0..<n).map { _ in words[Int(next() % UInt64(words.count))] }.joined(separator: " ") }
        let prompt = (0..<40).map { _ in Int32(next() % 32000) }
        let response = (0..<64).map { _ in Int32(next() % 32000) }
        let lp = (0..<64).map { _ in -Float(next() % 100_000) / 9973 }
        let ref = lp.map { $0 - Float(next() % 1000) / 7919 }
        var r = SampleRecord(id: i, promptIndex: i / 8, sampleIndex: i % 8, prompt: text(30), promptIDs: prompt,
                             responseIDs: response, response: text(48), logprobs: lp, refLogprobs: ref,
                             label: Label(labeller: "verifier", score: Float(next() % 2)), finishReason: "eos",
                             seed: SeedStream(seed: 7, stream: UInt64(i)))
        r.promptID = "p\(i / 8)"
        return r
    }

    public static func run(_ o: BufferBenchOptions, progress: (String) -> Void = { _ in }) throws -> String {
        let dir = o.directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("rondo-bench-buffer-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { if o.directory == nil { try? FileManager.default.removeItem(at: dir) } }
        let url = dir.appendingPathComponent("bench.jsonl.zst")
        let rssBefore = currentRSSMiB()
        // Records are made before timing so the figures measure the buffer, not the generator.
        let pool = (0..<min(o.records, 4096)).map(syntheticRecord)
        let t0 = Date()
        let writer = try BufferWriter(url: url, header: BufferHeader(policySHA256: String(repeating: "0", count: 64)),
                                      level: o.level, workers: o.workers)
        for i in 0..<o.records {
            // Unique content per record (token ids and floats shifted by the index), so zstd sees
            // realistic data rather than repeats of the pool.
            var r = pool[i % pool.count]
            r.id = i
            r.promptIndex = i / 8
            let shift = Int32(truncatingIfNeeded: i &* 7919)
            for k in r.responseIDs.indices { r.responseIDs[k] = (r.responseIDs[k] &+ shift) & 0x7FFF }
            let scale = 1 + Float(i % 9973) / 9973
            for k in r.logprobs.indices { r.logprobs[k] *= scale; r.refLogprobs![k] *= scale }
            try writer.append(r)
            if i % 50_000 == 0 { progress("writing \(i)/\(o.records)") }
        }
        let manifest = try writer.finish()
        let writeS = Date().timeIntervalSince(t0)
        let rssAfterWrite = currentRSSMiB()
        let entry = manifest.files.values.first!
        let t1 = Date()
        var count = 0
        try BufferReader(url: url).read { item in if case .sample = item { count += 1 } }
        let readS = Date().timeIntervalSince(t1)
        guard count == o.records else { throw BufferError(.record, "bench: read \(count) of \(o.records) records") }
        let mb = Double(entry.uncompressedBytes) / 1e6
        let fields: [(String, String)] = [
            ("bench", "\"buffer\""), ("records", "\(o.records)"), ("level", "\(o.level)"), ("workers", "\(o.workers)"),
            ("uncompressed_mb", String(format: "%.1f", mb)),
            ("compressed_mb", String(format: "%.1f", Double(entry.bytes) / 1e6)),
            ("ratio", String(format: "%.2f", Double(entry.uncompressedBytes) / Double(entry.bytes))),
            ("write_mb_per_s", String(format: "%.1f", mb / writeS)),
            ("read_mb_per_s", String(format: "%.1f", mb / readS)),
            ("write_s", String(format: "%.3f", writeS)), ("read_s", String(format: "%.3f", readS)),
            ("rss_growth_write_mib", String(format: "%.1f", rssAfterWrite - rssBefore)),
            ("rss_growth_total_mib", String(format: "%.1f", currentRSSMiB() - rssBefore)),
            ("peak_rss_mib", String(format: "%.1f", peakRSSMiB())),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// Resident set size now (VmRSS from /proc/self/status), MiB.
    static func currentRSSMiB() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }
}
