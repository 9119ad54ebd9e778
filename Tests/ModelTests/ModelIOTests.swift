// HF model-directory IO: safetensors reading/writing, strict loading, save round trips, sharded
// and 16-bit checkpoints, random init (errors in model directories: ModelLoadErrorTests.swift).

import Foundation
import Kernels
import Model
import TestSupport
import Testing

// MARK: - An independent safetensors reader (Foundation JSON + raw bytes), to check Model's

private struct RawSafetensors {
    let header: [String: Any]
    let data: Data
    let dataStart: Int

    init(_ url: URL) throws {
        data = try Data(contentsOf: url)
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(data[i]) << (8 * UInt64(i)) }
        dataStart = 8 + Int(n)
        header = try #require(JSONSerialization.jsonObject(with: data[8..<dataStart]) as? [String: Any])
    }

    var tensorNames: Set<String> { Set(header.keys).subtracting(["__metadata__"]) }

    func dtype(_ name: String) -> String? { (header[name] as? [String: Any])?["dtype"] as? String }

    func shape(_ name: String) -> [Int]? { (header[name] as? [String: Any])?["shape"] as? [Int] }

    /// Values of an F32 tensor, assembled byte by byte.
    func f32(_ name: String) throws -> [Float] {
        let entry = try #require(header[name] as? [String: Any])
        #expect(entry["dtype"] as? String == "F32")
        let offs = try #require(entry["data_offsets"] as? [Int])
        var out: [Float] = []
        var i = dataStart + offs[0]
        while i < dataStart + offs[1] {
            let bits = UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24
            out.append(Float(bitPattern: bits))
            i += 4
        }
        return out
    }
}

// MARK: - Helpers

func bitsEqual(_ a: ParameterBuffer, _ b: ParameterBuffer) -> Bool {
    a.count == b.count && memcmp(a.base, b.base, a.count * 4) == 0
}

func bitsEqual<C: Collection, D: Collection>(_ a: C, _ b: D) -> Bool where C.Element == Float, D.Element == Float {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// Expects `body` to throw a `ModelError` whose message contains every fragment.
func expectModelError(
    _ fragments: [String], excluding: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected a ModelError mentioning \(fragments), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let e as ModelError {
        for f in fragments {
            #expect(e.description.contains(f), "message lacks '\(f)': \(e.description)", sourceLocation: sourceLocation)
        }
        for f in excluding {
            #expect(!e.description.contains(f), "message should not contain '\(f)': \(e.description)", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected a ModelError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// A copy of fixture directory `source` in `tmp/name` whose weights and config were edited.
func variant(
    of source: URL, in tmp: TemporaryDirectory, _ name: String,
    dtype: SafetensorsDType = .f32,
    tensors edit: ((inout [String: Tensor]) -> Void)? = nil,
    config editConfig: ((inout [String: JSONValue]) -> Void)? = nil
) throws -> URL {
    let dir = try tmp.subdirectory(name)
    var config = try readConfigObject(source.appendingPathComponent("config.json"))
    editConfig?(&config)
    try writeJSONObject(config, to: dir.appendingPathComponent("config.json"))
    var ts = try SafetensorsFile(url: source.appendingPathComponent("model.safetensors")).readAll()
    edit?(&ts)
    try writeSafetensors(ts, dtype: dtype, to: dir.appendingPathComponent("model.safetensors"))
    return dir
}

/// Independent float32 → bfloat16 round-to-nearest-even: pick the nearer of the two bfloat16
/// neighbours (compared in Double), ties to the even one; beyond the largest bfloat16 → ∞.
private func bf16Reference(_ x: Float) -> Float {
    if x.isNaN || x.isInfinite { return x }
    let down = x.bitPattern & 0xFFFF_0000  // toward zero
    let up = down &+ 0x1_0000  // away from zero
    let lo = Float(bitPattern: down), hi = Float(bitPattern: up)
    let hiD = hi.isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(hi)
    let dLo = abs(Double(x) - Double(lo)), dHi = abs(hiD - Double(x))
    if dLo < dHi { return lo }
    if dHi < dLo { return hi }
    return (down >> 16) & 1 == 0 ? lo : hi
}

/// float32 → binary16 → float32 with the standard library's Float16 where it exists.
private func f16Reference(_ x: Float) -> Float {
    #if (os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64)
    return HalfFloat.toFloat(HalfFloat.f16Bits(x))  // no Float16 on Intel Macs
    #else
    return Float(Float16(x))
    #endif
}

private func std(_ v: some Collection<Float>) -> Double {
    let n = Double(v.count)
    let mean = v.reduce(0.0) { $0 + Double($1) } / n
    return (v.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / (n - 1)).squareRoot()
}

// MARK: - Tests

@Suite struct ModelIOTests {
    @Test func loadsPolicyAndRewardFixtures() throws {
        let policy = try ModelDirectory.load(Fixtures.policy)
        let reward = try ModelDirectory.load(Fixtures.reward)
        #expect(policy.parameters.layout.entries.count == 21)
        #expect(reward.parameters.layout.entries.count == 21)
        #expect(policy.parameters.count == 133_440)
        #expect(reward.parameters.count == 113_024)
        #expect(policy.config.head == .causalLM)
        #expect(reward.config.head == .score)
        #expect(policy.parameters.layout.entry("lm_head.weight")?.shape == [320, 64])
        #expect(reward.parameters.layout.entry("score.weight")?.shape == [1, 64])
        #expect(policy.directory.path == Fixtures.policy.standardizedFileURL.path)

        for (dir, model) in [(Fixtures.policy, policy), (Fixtures.reward, reward)] {
            let raw = try RawSafetensors(dir.appendingPathComponent("model.safetensors"))
            #expect(raw.tensorNames == Set(model.parameters.layout.entries.map(\.name)))
            // Spot checks at a few positions of a few tensors, then every tensor in full.
            for name in ["model.embed_tokens.weight", "model.layers.1.mlp.down_proj.weight", "model.norm.weight",
                         model.config.head == .score ? "score.weight" : "lm_head.weight"] {
                let expected = try raw.f32(name)
                let view = try #require(model.parameters.view(name))
                for i in [0, 1, expected.count / 2, expected.count - 1] {
                    #expect(view[i].bitPattern == expected[i].bitPattern, "\(name)[\(i)]")
                }
            }
            for e in model.parameters.layout.entries {
                #expect(bitsEqual(model.parameters.view(e), try raw.f32(e.name)), "\(e.name)")
            }
            // HF zeroes the pad row (id 2) at init; the norm weights are U(0.7, 1.3), not 1.
            let embed = try #require(model.parameters.view("model.embed_tokens.weight"))
            #expect(embed[128..<192].allSatisfy { $0 == 0 })
            #expect(embed[192..<256].contains { $0 != 0 })
            #expect(try #require(model.parameters.view("model.norm.weight")).allSatisfy { $0 >= 0.7 && $0 <= 1.3 && $0 != 1 })
        }
    }

    @Test func readsTheOracleTensorFile() throws {
        let file = try SafetensorsFile(url: Fixtures.tensors)
        let all = try file.readAll()
        #expect(all.count == 81)
        #expect(file.names.count == 81)
        #expect(file.names == file.names.sorted())
        let logits = try file.tensor("forward.1.logits")
        #expect(logits.shape == [7, 320])
        #expect(file.info("forward.1.logits")?.dtype == .f32)
        #expect(all["forward.1.logits"] == logits)
        let raw = try RawSafetensors(Fixtures.tensors)
        #expect(bitsEqual(logits.values, try raw.f32("forward.1.logits")))
        #expect(bitsEqual(try file.tensor("forward.2.logits").values, try raw.f32("forward.2.logits")))
        #expect(throws: ModelError.self) { try file.tensor("no.such.tensor") }
    }

    @Test(arguments: ["policy", "reward"])
    func saveRoundTripIsBitExact(_ which: String) throws {
        let source = Fixtures.oracle.appendingPathComponent(which)
        let tmp = TemporaryDirectory()
        let original = try ModelDirectory.load(source)
        let a = tmp.url.appendingPathComponent("a/nested")  // save creates intermediate directories
        try ModelDirectory.save(config: original.config, parameters: original.parameters, to: a, copyingAuxiliaryFilesFrom: source)
        let reloaded = try ModelDirectory.load(a)
        #expect(bitsEqual(original.parameters, reloaded.parameters))
        #expect(reloaded.parameters.layout.entries == original.parameters.layout.entries)
        #expect(reloaded.config.head == original.config.head)
        #expect(reloaded.config.rmsNormEps == original.config.rmsNormEps)
        #expect(reloaded.config.ropeTheta == original.config.ropeTheta)
        #expect(reloaded.config.padTokenID == original.config.padTokenID)

        // The saved weights: F32, header keys = layout names, HF metadata.
        let raw = try RawSafetensors(a.appendingPathComponent("model.safetensors"))
        #expect(raw.tensorNames == Set(original.parameters.layout.entries.map(\.name)))
        #expect((raw.header["__metadata__"] as? [String: String]) == ["format": "pt"])
        #expect(raw.tensorNames.allSatisfy { raw.dtype($0) == "F32" })
        #expect((raw.dataStart - 8) % 8 == 0)
        for e in original.parameters.layout.entries { #expect(raw.shape(e.name) == e.shape) }
        // Same writer conventions as HF's safetensors (sorted keys, layout, padding): the bytes
        // equal the transformers-written fixture.
        let fixtureBytes = try Data(contentsOf: source.appendingPathComponent("model.safetensors"))
        #expect(try Data(contentsOf: a.appendingPathComponent("model.safetensors")) == fixtureBytes)

        // Auxiliary files copied byte for byte; nothing else (no temporary files) left behind.
        var expected: Set<String> = ["config.json", "model.safetensors"]
        for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"] {
            let src = source.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: src.path) else { continue }
            expected.insert(name)
            #expect(try Data(contentsOf: a.appendingPathComponent(name)) == Data(contentsOf: src), "\(name)")
        }
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: a.path)) == expected)
        #expect(expected.contains("generation_config.json") == (which == "policy"))

        // config.json: sorted, pretty, slashes unescaped, Rondo's fields applied.
        let configText = try String(contentsOf: a.appendingPathComponent("config.json"), encoding: .utf8)
        #expect(!configText.contains("\\/"))
        #expect(configText.contains("\n  \"architectures\""))
        let written = try readConfigObject(a.appendingPathComponent("config.json"))
        #expect(written["dtype"] == .string("float32"))
        #expect(written["initializer_range"] == .number(0.18))

        // Re-saving the reloaded model gives identical bytes.
        let b = tmp.url.appendingPathComponent("b")
        try ModelDirectory.save(config: reloaded.config, parameters: reloaded.parameters, to: b, copyingAuxiliaryFilesFrom: a)
        for name in expected {
            #expect(try Data(contentsOf: a.appendingPathComponent(name)) == Data(contentsOf: b.appendingPathComponent(name)), "\(name)")
        }
        // Saving over an existing checkpoint replaces it (atomic rename over the old file).
        reloaded.parameters.base[5] = 42
        try ModelDirectory.save(config: reloaded.config, parameters: reloaded.parameters, to: b, copyingAuxiliaryFilesFrom: b)
        let again = try ModelDirectory.load(b)
        #expect(again.parameters.base[5] == 42)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: b.path)) == expected)
    }

    @Test(arguments: [SafetensorsDType.bf16, .f16])
    func loads16BitCheckpoints(_ dtype: SafetensorsDType) throws {
        let tmp = TemporaryDirectory()
        let original = try ModelDirectory.load(Fixtures.policy)
        let dir = try variant(of: Fixtures.policy, in: tmp, "half", dtype: dtype)
        let raw = try RawSafetensors(dir.appendingPathComponent("model.safetensors"))
        #expect(raw.tensorNames.allSatisfy { raw.dtype($0) == dtype.rawValue })
        #expect(try Data(contentsOf: dir.appendingPathComponent("model.safetensors")).count < 300_000)

        let loaded = try ModelDirectory.load(dir)
        var mismatches = 0, changed = 0
        for i in 0..<original.parameters.count {
            let x = original.parameters.base[i]
            let want = dtype == .bf16 ? bf16Reference(x) : f16Reference(x)
            if loaded.parameters.base[i].bitPattern != want.bitPattern { mismatches += 1 }
            if want != x { changed += 1 }
        }
        #expect(mismatches == 0)
        #expect(changed > original.parameters.count / 2)  // the rounding really happened
    }

    @Test func halfPrecisionConversionEdgeCases() throws {
        let tmp = TemporaryDirectory()
        let values: [Float] = [
            0, -0.0, 1, -1, 0.1, 1.0 / 3, -2.5e-3, 65504, 65519, 65520, -65520, 1e6, .infinity, -.infinity,
            0x1p-24, 0x1p-25, 0x1.000002p-25, 0x1.8p-24, 0x1p-26, 1e-10, -1e-10, 0x1p-14, 0x1.ff8p-15, 6.1e-5,
            1 + 0x1p-11, 1 + 0x3p-11, 1 + 0x1p-8, 1 + 0x3p-8, 1 + 0x1.8p-8,
            .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
        ]
        for dtype in [SafetensorsDType.f16, .bf16] {
            let url = tmp.file("edge-\(dtype.rawValue).safetensors")
            try writeSafetensors(["x": Tensor(shape: [values.count], values: values),
                                  "nan": Tensor(shape: [1], values: [.nan])], dtype: dtype, to: url)
            let file = try SafetensorsFile(url: url)
            let got = try file.tensor("x").values
            for (x, g) in zip(values, got) {
                let want = dtype == .bf16 ? bf16Reference(x) : f16Reference(x)
                #expect(g.bitPattern == want.bitPattern, "\(dtype.rawValue)(\(x)) = \(g), expected \(want)")
            }
            #expect(try file.tensor("nan").values[0].isNaN)
        }
    }

    @Test func shardedCheckpointLoadsLikeTheSingleFile() throws {
        let tmp = TemporaryDirectory()
        let single = try ModelDirectory.load(Fixtures.policy)
        let dir = try tmp.subdirectory("sharded")
        try FileManager.default.copyItem(at: Fixtures.policy.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        let all = tensors(of: single.parameters)
        let names = single.parameters.layout.entries.map(\.name)
        let shards = ["model-00001-of-00002.safetensors": Array(names[..<10]), "model-00002-of-00002.safetensors": Array(names[10...])]
        var weightMap: [String: Any] = [:]
        for (file, members) in shards {
            try writeSafetensors(all.filter { members.contains($0.key) }, to: dir.appendingPathComponent(file))
            for m in members { weightMap[m] = file }
        }
        let index: [String: Any] = ["metadata": ["total_size": single.parameters.count * 4], "weight_map": weightMap]
        let indexURL = dir.appendingPathComponent("model.safetensors.index.json")
        try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys]).write(to: indexURL)

        let sharded = try ModelDirectory.load(dir)
        #expect(bitsEqual(single.parameters, sharded.parameters))

        // The index must agree with the shards.
        var wrong = weightMap
        wrong["model.norm.weight"] = "model-00001-of-00002.safetensors"
        try JSONSerialization.data(withJSONObject: ["weight_map": wrong]).write(to: indexURL)
        expectModelError(["model.norm.weight", "model-0000"]) { _ = try ModelDirectory.load(dir) }
        var unlisted = weightMap
        unlisted["model.norm.weight"] = nil
        try JSONSerialization.data(withJSONObject: ["weight_map": unlisted]).write(to: indexURL)
        expectModelError(["model-00002-of-00002.safetensors: tensor 'model.norm.weight' is not mapped to this shard"]) {
            _ = try ModelDirectory.load(dir)
        }

        try JSONSerialization.data(withJSONObject: index).write(to: indexURL)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        expectModelError(["model-00002-of-00002.safetensors", "missing", indexURL.path]) { _ = try ModelDirectory.load(dir) }

        // Saving a single file over a sharded directory removes the stale index and shards.
        try ModelDirectory.save(config: single.config, parameters: single.parameters, to: dir, copyingAuxiliaryFilesFrom: nil)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)) == ["config.json", "model.safetensors"])
        #expect(bitsEqual(single.parameters, try ModelDirectory.load(dir).parameters))
    }

    @Test func sanitizeDropsInvFreqAndChecksTiedHead() throws {
        let tmp = TemporaryDirectory()
        let original = try ModelDirectory.load(Fixtures.policy)
        let inv = try variant(of: Fixtures.policy, in: tmp, "inv", tensors: {
            for l in 0..<2 {
                $0["model.layers.\(l).self_attn.rotary_emb.inv_freq"] = Tensor(shape: [8], values: (0..<8).map { Float($0) })
            }
        })
        #expect(bitsEqual(try ModelDirectory.load(inv).parameters, original.parameters))

        // Tied: an lm_head.weight identical to the embedding is accepted and dropped.
        let tied = try variant(of: Fixtures.policy, in: tmp, "tied",
                               tensors: { $0["lm_head.weight"] = $0["model.embed_tokens.weight"] },
                               config: { $0["tie_word_embeddings"] = .bool(true) })
        let t = try ModelDirectory.load(tied)
        #expect(t.parameters.layout.entries.count == 20)
        #expect(t.parameters.layout.entry("lm_head.weight") == nil)
        #expect(t.parameters.layout.head == t.parameters.layout.embed)
        #expect(bitsEqual(t.parameters.view("model.embed_tokens.weight")!, original.parameters.view("model.embed_tokens.weight")!))
        // ... and saved without lm_head.weight, like transformers.
        let saved = tmp.url.appendingPathComponent("tied-saved")
        try ModelDirectory.save(config: t.config, parameters: t.parameters, to: saved, copyingAuxiliaryFilesFrom: tied)
        #expect(try RawSafetensors(saved.appendingPathComponent("model.safetensors")).tensorNames.count == 20)
        #expect(bitsEqual(try ModelDirectory.load(saved).parameters, t.parameters))

        // Tied with a different lm_head.weight is refused.
        let untied = try variant(of: Fixtures.policy, in: tmp, "untied", config: { $0["tie_word_embeddings"] = .bool(true) })
        expectModelError(["lm_head.weight", "tie_word_embeddings", "model.safetensors"]) { _ = try ModelDirectory.load(untied) }
    }

    // MARK: Safetensors validation on hand-made files

    /// A file with the given header text and `dataBytes` zero bytes of data.
    private func handMade(_ tmp: TemporaryDirectory, _ name: String, header: String, dataBytes: Int, declaredLength: UInt64? = nil) throws -> URL {
        var d = Data()
        let h = Array(header.utf8)
        withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { d.append(contentsOf: $0) }
        d.append(contentsOf: h)
        d.append(Data(count: dataBytes))
        let url = tmp.file(name)
        try d.write(to: url)
        return url
    }

    @Test func safetensorsHeaderValidation() throws {
        let tmp = TemporaryDirectory()
        var url = try handMade(tmp, "ok.safetensors", header: #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"e":{"dtype":"BF16","shape":[0],"data_offsets":[16,16]}}"#, dataBytes: 16)
        let ok = try SafetensorsFile(url: url)
        #expect(ok.names == ["a", "e"])
        #expect(try ok.tensor("a") == Tensor(shape: [2, 2], values: [0, 0, 0, 0]))
        #expect(try ok.tensor("e").values.isEmpty)

        url = try handMade(tmp, "long.safetensors", header: "{}", dataBytes: 0, declaredLength: 1000)
        expectModelError([url.path, "beyond the end"]) { _ = try SafetensorsFile(url: url) }

        url = try handMade(tmp, "array.safetensors", header: "[1, 2]", dataBytes: 0)
        expectModelError([url.path, "not a JSON object"]) { _ = try SafetensorsFile(url: url) }

        url = try handMade(tmp, "dtype.safetensors", header: #"{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}}"#, dataBytes: 1)
        expectModelError([url.path, "tensor 'w'", "unknown dtype 'Q4'"]) { _ = try SafetensorsFile(url: url) }

        url = try handMade(tmp, "span.safetensors", header: #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}}"#, dataBytes: 8)
        expectModelError([url.path, "tensor 'w'", "needs 16 bytes", "span 8"]) { _ = try SafetensorsFile(url: url) }

        url = try handMade(tmp, "outside.safetensors", header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, dataBytes: 12)
        expectModelError([url.path, "tensor 'w'", "outside", "truncated or corrupt"]) { _ = try SafetensorsFile(url: url) }

        url = try handMade(tmp, "overlap.safetensors", header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[8],"data_offsets":[8,24]}}"#, dataBytes: 24)
        expectModelError([url.path, "'a'", "'b'", "overlap"]) { _ = try SafetensorsFile(url: url) }

        url = try handMade(tmp, "i64.safetensors", header: #"{"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#, dataBytes: 16)
        let ints = try SafetensorsFile(url: url)
        expectModelError([url.path, "tensor 'ids'", "I64"]) { _ = try ints.tensor("ids") }
    }

    @Test func writerPadsHeaderAndEscapesNames() throws {
        let tmp = TemporaryDirectory()
        let url = tmp.file("w.safetensors")
        let ts = ["b": Tensor(shape: [3], values: [1, 2, 3]), "a\"q\\x/y": Tensor(shape: [1, 1], values: [-4]),
                  "z": Tensor(shape: [0, 5], values: [])]
        try writeSafetensors(ts, to: url)
        let raw = try RawSafetensors(url)
        #expect((raw.dataStart - 8) % 8 == 0)
        #expect(raw.tensorNames == Set(ts.keys))
        #expect(try raw.f32("a\"q\\x/y") == [-4])
        let file = try SafetensorsFile(url: url)
        #expect(try file.readAll() == ts)
        #expect(file.metadata == ["format": "pt"])
        // Data in sorted-name order.
        #expect(file.info("a\"q\\x/y")?.dataOffsets == 0..<4)
        #expect(file.info("b")?.dataOffsets == 4..<16)
        #expect(throws: ModelError.self) {
            try writeSafetensors(["bad": Tensor(shape: [2], values: [1, 2, 3])], to: tmp.file("bad.safetensors"))
        }
        #expect(!FileManager.default.fileExists(atPath: tmp.file("bad.safetensors").path))
    }

    @Test func atomicFileWriteReplacesAndReportsErrors() throws {
        let tmp = TemporaryDirectory()
        let url = tmp.file("x.txt")
        try AtomicFile.write(Data("one".utf8), to: url)
        try AtomicFile.write(Data("two".utf8), to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "two")
        // A failing producer leaves the old file and no temporary behind.
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try AtomicFile.write(to: url) { w in
                try w.write(Data("partial".utf8))
                throw Boom()
            }
        }
        #expect(try String(contentsOf: url, encoding: .utf8) == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.url.path) == ["x.txt"])
        let bad = tmp.url.appendingPathComponent("no/such/dir/f")
        let error = #expect(throws: FileError.self) { try AtomicFile.write(Data(), to: bad) }
        #expect(error?.description.contains(bad.path) == true)
    }

    // MARK: Random init

    @Test func randomInitFollowsHFConvention() throws {
        let config = try LlamaConfig.load(Fixtures.policy.appendingPathComponent("config.json"))
        let a = ModelDirectory.randomInit(config: config, seed: 7)
        let b = ModelDirectory.randomInit(config: config, seed: 7)
        let c = ModelDirectory.randomInit(config: config, seed: 8)
        #expect(bitsEqual(a, b))
        let differ = (0..<a.count).filter { a.base[$0] != c.base[$0] }.count
        let constant = a.layout.entries.filter { $0.shape.count == 1 }.reduce(0) { $0 + $1.count } + config.hiddenSize
        #expect(differ == a.count - constant)

        for e in a.layout.entries where e.shape.count == 1 {
            #expect(a.view(e).allSatisfy { $0 == 1 }, "\(e.name)")
        }
        let embed = try #require(a.view("model.embed_tokens.weight"))
        let pad = try #require(config.padTokenID)
        #expect(pad == 2)
        #expect(embed[(pad * 64)..<(pad * 64 + 64)].allSatisfy { $0 == 0 })
        #expect(embed[((pad + 1) * 64)..<((pad + 2) * 64)].allSatisfy { $0 != 0 })

        // Element j of entry i is σ·Philox(seed, stream: i).normal(j): independent of everything else.
        for (i, e) in a.layout.entries.enumerated() where e.shape.count == 2 {
            for j in [0, 1, e.count - 1] where !(i == 0 && j / 64 == pad) {
                #expect(a.view(e)[j] == 0.18 * Philox(seed: 7, stream: UInt64(i)).normal(UInt64(j)))
            }
        }

        // σ from config.json (0.18), an explicit override, and the 0.02 default.
        let embedRows = Array(embed[0..<(pad * 64)]) + Array(embed[((pad + 1) * 64)...])
        #expect(abs(std(embedRows) / 0.18 - 1) < 0.05)
        #expect(abs(std(a.view("lm_head.weight")!) / 0.18 - 1) < 0.05)
        let override = ModelDirectory.randomInit(config: config, seed: 7, initializerRange: 0.05)
        #expect(abs(std(override.view("model.layers.0.mlp.gate_proj.weight")!) / 0.05 - 1) < 0.05)
        var plain = config
        plain.raw["initializer_range"] = nil
        let d = ModelDirectory.randomInit(config: plain, seed: 3)
        #expect(abs(std(d.view("lm_head.weight")!) / 0.02 - 1) < 0.05)
        let mean = a.view("lm_head.weight")!.reduce(0.0) { $0 + Double($1) } / 20480
        #expect(abs(mean) < 0.01)

        // A score head is initialised like any linear layer.
        let rewardConfig = try LlamaConfig.load(Fixtures.reward.appendingPathComponent("config.json"))
        let r = ModelDirectory.randomInit(config: rewardConfig, seed: 7)
        #expect(r.view("score.weight")!.allSatisfy { $0 != 0 && abs($0) < 1.5 })
        #expect(bitsEqual(r.view("model.embed_tokens.weight")!, embed))
    }

    /// The benches' FLOP count of one decoded row: every weight product, attention and the LM head.
    @Test func forwardFLOPsCountEveryProduct() throws {
        let c = try ModelDirectory.load(Fixtures.policy).config
        let C = c.hiddenSize, A = c.numHeads * c.headDim, KV = c.numKVHeads * c.headDim, F = c.intermediateSize
        let perLayer = C * (A + 2 * KV) + A * C + 2 * C * F + F * C
        let expected = 2.0 * Double(c.numLayers * perLayer + c.vocabSize * C) + 4.0 * Double(c.numLayers * A * 10)
        #expect(c.forwardFLOPsPerRow(context: 10) == expected)
        #expect(c.layerProductShapes.map(\.n) == [A + 2 * KV, C, 2 * F, C])
    }
}
