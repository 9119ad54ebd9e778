// Rollout buffers: write → read round trips (floats bit-exact), corruption detection, salvage,
// the summary statistics, and readability with `zstdcat | jq`.

import Foundation
import Rollouts
import Testing
import TestSupport

/// SplitMix64, for reproducible random records.
struct Mix {
    var s: UInt64
    mutating func next() -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

let awkwardFloats: [Float] = [0, -0.0, .nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                              .leastNonzeroMagnitude, .leastNormalMagnitude, 1e-45, 3.4e38, 0.1, 1 / 3, -2.5e-8, 16_777_217]
let awkwardText = ["", "plain", "quote \" backslash \\ slash /", "tab\tnew\nline\r\u{0}\u{1}\u{1F}", "héllo wörld ✓",
                   "日本語のテキスト", "emoji 😀🎉 👍🏽 👨‍👩‍👧", "e\u{301} vs é", "\u{FEFF}bom", "\u{2028}\u{2029}"]

func randomRecord(_ id: Int, _ g: inout Mix) -> SampleRecord {
    func floats(_ n: Int) -> [Float] {
        // Any bit pattern; NaNs are canonical (the JSON form "NaN" keeps no payload or sign).
        (0..<n).map { _ in
            let x = g.below(4) == 0 ? awkwardFloats[g.below(awkwardFloats.count)] : Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))
            return x.isNaN ? .nan : x
        }
    }
    let long = g.below(20) == 0
    let n = long ? 20_000 + g.below(5000) : g.below(3) == 0 ? 0 : g.below(50)
    var r = SampleRecord(id: id, promptIndex: g.below(10), sampleIndex: g.below(8),
                         prompt: g.below(5) == 0 ? nil : awkwardText[g.below(awkwardText.count)],
                         promptIDs: (0..<g.below(30)).map { _ in Int32(truncatingIfNeeded: g.next()) },
                         responseIDs: (0..<n).map { _ in Int32(g.below(200_000)) },
                         response: awkwardText[g.below(awkwardText.count)] + String(repeating: "x", count: long ? 30_000 : 0),
                         logprobs: floats(n), refLogprobs: g.below(2) == 0 ? nil : floats(n),
                         label: g.below(3) == 0 ? nil : Label(labeller: "verifier", score: floats(1)[0],
                                                                verdict: g.below(2) == 0 ? nil : awkwardText[g.below(awkwardText.count)]),
                         finishReason: ["eos", "stop", "length"][g.below(3)],
                         seed: SeedStream(seed: g.next(), stream: g.next()))
    r.promptID = g.below(2) == 0 ? nil : "p-\(g.next())"
    if g.below(4) == 0 { r.values = floats(n); r.advantages = floats(n); r.returns = floats(n) }
    return r
}

func bits(_ xs: [Float]?) -> [UInt32]? { xs?.map(\.bitPattern) }

/// Field-by-field equality with floats compared bit for bit (NaN == NaN, −0 ≠ +0).
func expectSame(_ a: SampleRecord, _ b: SampleRecord, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.id == b.id && a.promptIndex == b.promptIndex && a.sampleIndex == b.sampleIndex, sourceLocation: sourceLocation)
    #expect(a.promptID == b.promptID && a.prompt == b.prompt && a.response == b.response, sourceLocation: sourceLocation)
    #expect(a.promptIDs == b.promptIDs && a.responseIDs == b.responseIDs, sourceLocation: sourceLocation)
    #expect(bits(a.logprobs) == bits(b.logprobs) && bits(a.refLogprobs) == bits(b.refLogprobs), sourceLocation: sourceLocation)
    #expect(bits(a.values) == bits(b.values) && bits(a.advantages) == bits(b.advantages) && bits(a.returns) == bits(b.returns),
            sourceLocation: sourceLocation)
    #expect(a.label?.labeller == b.label?.labeller && a.label?.verdict == b.label?.verdict, sourceLocation: sourceLocation)
    #expect(a.label?.score?.bitPattern == b.label?.score?.bitPattern, sourceLocation: sourceLocation)
    #expect(a.finishReason == b.finishReason && a.seed == b.seed, sourceLocation: sourceLocation)
}

/// Writes `records` and pairs between consecutive samples into `dir/name.jsonl.zst`.
@discardableResult
func writeBuffer(_ dir: URL, _ records: [SampleRecord], name: String = "rollouts", frameSize: Int? = nil) throws -> URL {
    let url = dir.appendingPathComponent("\(name).jsonl.zst")
    let w = try BufferWriter(url: url, header: BufferHeader(round: 2, policySHA256: String(repeating: "ab", count: 32)))
    for r in records { try w.append(r) }
    for k in stride(from: 1, to: records.count, by: 2) {
        try w.append(PairRecord(promptIndex: records[k].promptIndex, chosen: k, rejected: k - 1, margin: 1.5, how: "best_vs_worst"))
    }
    try w.finish(timings: ["sample_s": 1.25])
    return url
}

func readAll(_ url: URL, salvage: Bool = false) throws -> ([SampleRecord], [PairRecord], ReadReport) {
    var samples: [SampleRecord] = [], pairs: [PairRecord] = []
    var reader = BufferReader(url: url)
    reader.salvage = salvage
    let report = try reader.read { item in
        switch item {
        case .sample(let s): samples.append(s)
        case .pair(let p): pairs.append(p)
        case .header, .comparison: break
        }
    }
    return (samples, pairs, report)
}

@Suite struct BufferTests {
    @Test(arguments: [1, 2, 3])
    func randomRecordsRoundTripBitExact(seed: UInt64) throws {
        try withTemporaryDirectory { dir in
            var g = Mix(s: seed)
            let records = (0..<300).map { randomRecord($0, &g) }
            let url = try writeBuffer(dir, records)
            let (back, pairs, report) = try readAll(url)
            #expect(back.count == records.count && report.damage == nil)
            for (a, b) in zip(records, back) { expectSame(a, b) }
            #expect(pairs.count == records.count / 2)
            #expect(pairs.first == PairRecord(promptIndex: records[1].promptIndex, chosen: 1, rejected: 0, margin: 1.5, how: "best_vs_worst"))
            let manifest = try BufferManifest.load(BufferManifest.url(for: url))
            #expect(manifest.records == 300 && manifest.pairs == 150 && manifest.round == 2)
            #expect(manifest.files["rollouts.jsonl.zst"]?.bytes == (try Data(contentsOf: url)).count)
        }
    }

    @Test func comparisonsRoundTripBetweenSamplesAndPairs() throws {
        try withTemporaryDirectory { dir in
            var g = Mix(s: 9)
            let records = (0..<4).map { randomRecord($0, &g) }
            let comparisons = awkwardText.enumerated().map { k, t in
                ComparisonRecord(promptIndex: k, a: k % 4, b: (k + 1) % 4,
                                 judge: JudgeExchange(prompt: t, reply: k % 3 == 0 ? nil : t, verdict: ["A", "B", "tie", nil][k % 4],
                                                      latencyS: Float(k) * 0.37, retries: k % 2, error: k % 4 == 3 ? "no match: \(t)" : nil))
            }
            let url = dir.appendingPathComponent("c.jsonl.zst")
            let w = try BufferWriter(url: url, header: BufferHeader(round: 1, policySHA256: String(repeating: "cd", count: 32)))
            for r in records { try w.append(r) }
            for c in comparisons { try w.append(c) }
            try w.append(PairRecord(promptIndex: 0, chosen: 1, rejected: 0, margin: 1, how: "judge_pairwise"))
            #expect(throws: BufferError.self) { try w.append(ComparisonRecord(promptIndex: 0, a: 0, b: 4, judge: comparisons[0].judge)) }
            try w.finish(timings: [:])
            var read: [ComparisonRecord] = []
            try BufferReader(url: url).read { if case .comparison(let c) = $0 { read.append(c) } }
            #expect(read == comparisons)
            let (samples, pairs, report) = try readAll(url)
            #expect(samples.count == 4 && pairs.count == 1 && report.records == 4 && report.pairs == 1)
        }
    }

    @Test func sameRecordsGiveIdenticalBytes() throws {
        try withTemporaryDirectory { dir in
            var g = Mix(s: 9)
            let records = (0..<400).map { randomRecord($0, &g) }
            let a = try Data(contentsOf: writeBuffer(dir, records, name: "a"))
            let b = try Data(contentsOf: writeBuffer(dir, records, name: "b"))
            #expect(a == b)
        }
    }

    func damaged(_ body: (URL, inout Data) throws -> Void) throws -> (TemporaryDirectory, URL, Int) {
        let dir = TemporaryDirectory("rondo-damage")
        var g = Mix(s: 4)
        // ~1,500 records of ~8 KB of JSON: several 4 MiB zstd frames.
        let records = (0..<1500).map { i -> SampleRecord in
            var r = randomRecord(i, &g)
            r.responseIDs = (0..<600).map { Int32(($0 * 7 + i) % 5000) }
            r.logprobs = (0..<600).map { -Float($0 % 97) / 13 }
            r.refLogprobs = nil; r.values = nil; r.advantages = nil; r.returns = nil
            return r
        }
        let url = try writeBuffer(dir.url, records)
        var data = try Data(contentsOf: url)
        try body(url, &data)
        try data.write(to: url)
        return (dir, url, records.count)
    }

    @Test func flippedByteIsDetectedAndSalvaged() throws {
        let (dir, url, total) = try damaged { _, d in d[d.count * 2 / 3] ^= 0x40 }
        #expect(throws: BufferError.self) { try readAll(url) }
        do { _ = try readAll(url) } catch let e as BufferError {
            #expect(e.description.contains(url.lastPathComponent), "\(e)")
        }
        let (kept, _, report) = try readAll(url, salvage: true)
        #expect(report.damage != nil)
        #expect(kept.count > 0 && kept.count < total, "kept \(kept.count) of \(total)")
        for (i, r) in kept.enumerated() { #expect(r.id == i) }  // an intact prefix
        withExtendedLifetime(dir) {}
    }

    @Test func truncatedFileIsDetectedAndSalvaged() throws {
        let (dir, url, total) = try damaged { _, d in d = d.prefix(d.count / 2) }
        do {
            _ = try readAll(url)
            Issue.record("a truncated buffer read without error")
        } catch let e as BufferError {
            #expect(e.description.contains(url.path) && e.description.contains("truncated"), "\(e)")
        }
        let (kept, _, report) = try readAll(url, salvage: true)
        #expect(report.damage?.kind == .truncated)
        #expect(kept.count > 0 && kept.count < total)
        withExtendedLifetime(dir) {}
    }

    @Test func editedManifestIsDetected() throws {
        try withTemporaryDirectory { dir in
            var g = Mix(s: 5)
            let url = try writeBuffer(dir, (0..<20).map { randomRecord($0, &g) })
            let m = BufferManifest.url(for: url)
            var text = try String(contentsOf: m, encoding: .utf8)
            let sha = try BufferManifest.load(m).files["rollouts.jsonl.zst"]!.sha256
            text = text.replacingOccurrences(of: sha, with: String(sha.reversed()))
            try text.write(to: m, atomically: true, encoding: .utf8)
            do {
                _ = try readAll(url)
                Issue.record("an edited manifest was not noticed")
            } catch let e as BufferError {
                #expect(e.kind == .manifest && e.description.contains("rollouts.jsonl.zst") && e.description.contains("SHA-256"))
            }
            let (kept, _, report) = try readAll(url, salvage: true)
            #expect(kept.count == 20 && report.damage?.kind == .manifest)
        }
    }

    @Test func summaryStatistics() throws {
        var s = BufferSummary()
        // Two prompts; lengths 1…4 with scores equal to lengths (perfect length bias); one duplicate.
        for (i, (p, ids)) in [(0, [1]), (0, [1, 2]), (1, [3, 4, 5]), (1, [3, 4, 5, 6]), (1, [3, 4, 5, 6])].enumerated() {
            s.add(SampleRecord(id: i, promptIndex: p, sampleIndex: i, promptIDs: [0], responseIDs: ids.map(Int32.init),
                               logprobs: ids.map { _ in -1 }, label: Label(labeller: "v", score: Float(ids.count)),
                               finishReason: i == 4 ? "length" : "eos", seed: SeedStream(seed: 1, stream: UInt64(i))))
        }
        s.add(PairRecord(promptIndex: 1, chosen: 3, rejected: 2, margin: 1, how: "best_vs_worst"))
        let v = Dictionary(s.values(), uniquingKeysWith: { a, _ in a })
        #expect(v["records"] == .int(5) && v["prompts"] == .int(2) && v["pairs"] == .int(1))
        #expect(abs(v["length_score_corr"]!.double - 1) < 1e-12)
        #expect(v["pair_length_gap"] == .num(1))
        #expect(v["duplicate_rate"] == .num(0.2))
        #expect(v["distinct_1"] == .num(6.0 / 14.0))
        #expect(v["finish_length"] == .int(1) && v["finish_eos"] == .int(4))
        #expect(v["score_p50"] == .num(3))
    }

    @Test func filterExpressions() throws {
        let r = SampleRecord(id: 0, promptIndex: 3, sampleIndex: 1, promptIDs: [0], responseIDs: [1, 2, 3],
                             logprobs: [-1, -2, -3], label: Label(labeller: "verifier", score: -0.5),
                             finishReason: "eos", seed: SeedStream(seed: 0, stream: 0))
        #expect(try RecordFilter("score < 0").matches(r))
        #expect(try !RecordFilter("score < 0 and length > 3").matches(r))
        #expect(try RecordFilter("finish_reason == eos and logprob_mean <= -2").matches(r))
        #expect(try RecordFilter("labeller != 'judge'").matches(r))
        #expect(throws: BufferError.self) { try RecordFilter("scor < 0") }
        #expect(throws: BufferError.self) { try RecordFilter("score ~ 0") }
    }

    @Test func filterRefusesNonFiniteNumbers() {
        for text in ["score > NaN", "score < nan", "length <= inf", "score != -Infinity"] {
            do {
                _ = try RecordFilter(text)
                Issue.record("accepted: \(text)")
            } catch let e as BufferError {
                #expect("\(e)".contains("not a finite number"), "\(text): \(e)")
            } catch { Issue.record("\(error)") }
        }
    }

    @Test func zstdcatAndJqReadEveryRecord() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/jq"), FileManager.default.isExecutableFile(atPath: "/usr/bin/zstdcat") else {
            Issue.record("jq and zstd must be installed (.ci/run installs them)")
            return
        }
        try withTemporaryDirectory { dir in
            var g = Mix(s: 6)
            let records = (0..<200).map { randomRecord($0, &g) }
            let url = try writeBuffer(dir, records)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "zstdcat '\(url.path)' | jq -c 'select(.kind == \"sample\") | [.id, (.response_ids | length)]'"]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
            #expect(lines.count == records.count)
            for (line, r) in zip(lines, records) { #expect(line == "[\(r.id),\(r.responseIDs.count)]") }
        }
    }
}
