// End-to-end tests of the `rondo` command line: real processes, exit codes and messages.

import Foundation
import Model
import Testing
import TestSupport

@Suite struct CLITests {
    static let repo = Fixtures.oracle.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let example = repo.appendingPathComponent("data/examples/logprobs.jsonl")

    @Test func logprobsMatchesOracle() throws {
        let r = try runRondo(["logprobs", "--model", Fixtures.policy.path, "--input", Self.example.path, "--batch-size", "3"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let cases = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: Fixtures.cases))
        let items = cases["cases"]!["logprobs"]!["items"]!.array!
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == items.count)
        for (line, item) in zip(lines, items) {
            let o = try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
            #expect(o["id"] != nil, "input keys are kept")
            let got = o["logprobs"]!.array!.map { Float($0.double!) }
            let want = item["policy_logprobs"]!.array!.map { Float($0.double!) }
            #expect(got.count == want.count)
            for (g, w) in zip(got, want) { #expect(abs(g - w) <= 1e-5 * max(1, abs(w))) }
            #expect(abs(Float(o["sum"]!.double!) - Float(item["policy_sum"]!.double!)) < 1e-4)
        }
    }

    @Test func logprobsWritesOutputFile() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("out.jsonl")
            let r = try runRondo(["logprobs", "--model", Fixtures.policy.path, "--input", Self.example.path,
                                  "--output", out.path, "--threads", "1"])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            let text = try String(contentsOf: out, encoding: .utf8)
            #expect(text.split(separator: "\n").count == 4)
            #expect(r.stderr.contains("scored 4 sequences"))
        }
    }

    @Test func badInputLineNamesFileAndLine() throws {
        try withTemporaryDirectory { dir in
            let input = dir.appendingPathComponent("in.jsonl")
            try "{\"prompt_ids\": [0, 5], \"response_ids\": [7]}\n{\"prompt_ids\": [0], \"response\": [1]}\n"
                .write(to: input, atomically: true, encoding: .utf8)
            let r = try runRondo(["logprobs", "--model", Fixtures.policy.path, "--input", input.path])
            #expect(r.status != 0)
            #expect(r.stderr.contains("in.jsonl:2"), "stderr: \(r.stderr)")
            #expect(r.stderr.contains("response_ids"))
            #expect(r.stdout.isEmpty, "nothing is written when the input is bad")

            try "{\"prompt_ids\": [0, 5], \"response_ids\": [7000]}\n".write(to: input, atomically: true, encoding: .utf8)
            let r2 = try runRondo(["logprobs", "--model", Fixtures.policy.path, "--input", input.path])
            #expect(r2.status != 0)
            #expect(r2.stderr.contains("in.jsonl:1") && r2.stderr.contains("7000"), "stderr: \(r2.stderr)")
        }
    }

    @Test func corruptModelFailsWithFileName() throws {
        try withTemporaryDirectory { dir in
            let model = dir.appendingPathComponent("policy")
            try copyDirectory(Fixtures.policy, to: model)
            let weights = model.appendingPathComponent("model.safetensors")
            let data = try Data(contentsOf: weights)
            try data.prefix(data.count / 2).write(to: weights)
            let r = try runRondo(["logprobs", "--model", model.path, "--input", Self.example.path])
            #expect(r.status != 0)
            #expect(r.stderr.contains("model.safetensors"), "stderr: \(r.stderr)")

            try copyDirectory(Fixtures.policy, to: dir.appendingPathComponent("gpt"))
            let config = dir.appendingPathComponent("gpt/config.json")
            let text = try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "\"llama\"", with: "\"gpt2\"")
            try text.write(to: config, atomically: true, encoding: .utf8)
            let r2 = try runRondo(["logprobs", "--model", dir.appendingPathComponent("gpt").path, "--input", Self.example.path])
            #expect(r2.status != 0)
            #expect(r2.stderr.contains("gpt2") && r2.stderr.contains("config.json"), "stderr: \(r2.stderr)")
        }
    }

    @Test func initThenScoreAndBench() throws {
        try withTemporaryDirectory { dir in
            let out = dir.appendingPathComponent("fresh")
            let config = Fixtures.policy.appendingPathComponent("config.json")
            let r = try runRondo(["init", "--config", config.path, "--out", out.path, "--seed", "3"])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            let loaded = try ModelDirectory.load(out)
            #expect(loaded.parameters.count == 133_440)
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("tokenizer.json").path))
            let r2 = try runRondo(["logprobs", "--model", out.path, "--input", Self.example.path])
            #expect(r2.status == 0 && r2.stdout.split(separator: "\n").count == 4)

            let b = try runRondo(["bench", "train", "--config", config.path, "--batch", "2", "--seq", "16",
                                  "--steps", "2", "--warmup", "1"])
            #expect(b.status == 0, "stderr: \(b.stderr)")
            let o = try JSONDecoder().decode(JSONValue.self, from: Data(b.stdout.utf8))
            for key in ["tokens_per_s", "ms_per_step", "peak_rss_mib", "mfu", "sgemm_gflop_per_s"] {
                #expect((o[key]?.double ?? 0) > 0, "\(key) in \(b.stdout)")
            }
            // MFU is over the sgemm rate measured in this run, not a constant.
            if let mfu = o["mfu"]?.double, let achieved = o["achieved_gflops_median"]?.double,
               let sgemm = o["sgemm_gflop_per_s"]?.double {
                // Each printed with 4 significant digits (sgemm with 2 decimals): their rounding, no more.
                #expect(abs(mfu - achieved / sgemm) <= 0.002 * mfu + 0.005 / sgemm * mfu, "mfu vs achieved / sgemm in \(b.stdout)")
            }
        }
    }

    @Test func benchSamplePrintsItsJSONLine() throws {
        let config = Fixtures.policy.appendingPathComponent("config.json")
        let r = try runRondo(["bench", "sample", "--config", config.path, "--batch", "3", "--prompt-len", "4",
                              "--new-tokens", "5", "--repeats", "2", "--warmup", "0"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let o = try JSONDecoder().decode(JSONValue.self, from: Data(r.stdout.utf8))
        for key in ["new_tokens_per_s", "prefill_ms", "decode_ms_per_token_step", "peak_rss_mib", "decoder_mib"] {
            #expect((o[key]?.double ?? 0) > 0, "\(key) in \(r.stdout)")
        }
        #expect((o["sampler_setup_ms"]?.double ?? -1) >= 0, "sampler_setup_ms in \(r.stdout)")
        // The machine's limits, measured in the same run, and the run's fractions of them.
        for key in ["stream_gb_per_s", "sgemm_gflop_per_s", "fma_peak_gflop_per_s", "bound_ms_per_step",
                    "fraction_of_bound", "prefill_gflop_per_s", "prefill_fraction_of_sgemm", "prefill_fraction_of_peak",
                    "weight_bytes", "decode_flop_per_step"] {
            #expect((o[key]?.double ?? 0) > 0, "\(key) in \(r.stdout)")
        }
        if let stream = o["stream_gb_per_s"]?.double, let blas = o["sgemm_gflop_per_s"]?.double,
           let peak = o["fma_peak_gflop_per_s"]?.double, let bytes = o["weight_bytes"]?.double, let flop = o["decode_flop_per_step"]?.double,
           let bound = o["bound_ms_per_step"]?.double, let fraction = o["fraction_of_bound"]?.double,
           let decode = o["decode_ms_per_token_step"]?.double {
            let sgemm = max(blas, peak)  // the arithmetic's limit: the cores' peak, or sgemm if it measured higher
            let expected = max(bytes / (stream * 1e9), flop / (sgemm * 1e9)) * 1e3
            // stream and sgemm are printed with 2 decimals, bound and fraction with 4 significant digits,
            // decode with 3 decimals: the tolerances are those roundings.
            let inputs = max(0.005 / stream, 0.005 / sgemm)
            #expect(abs(bound - expected) <= (0.001 + inputs) * expected, "bound_ms_per_step vs its formula in \(r.stdout)")
            #expect(abs(fraction - bound / decode) <= (0.002 + 0.0005 / decode) * fraction, "fraction_of_bound in \(r.stdout)")
        }
        #expect(o["sgemm_rows"]?.double == 12, "sgemm at batch · prompt_len rows")
        #expect(o["batch"]?.double == 3 && o["new_tokens"]?.double == 5)
        let bad = try runRondo(["bench", "sample", "--config", config.path, "--new-tokens", "1"])
        #expect(bad.status != 0 && bad.stderr.contains("--new-tokens"), "stderr: \(bad.stderr)")
    }

    @Test func helpExplainsCommands() throws {
        let r = try runRondo(["--help"])
        #expect(r.status == 0)
        for cmd in ["logprobs", "init", "bench"] { #expect(r.stdout.contains(cmd)) }
        let missing = try runRondo(["bench", "train", "--batch", "2"])
        #expect(missing.status != 0 && missing.stderr.contains("--model or --config"))
    }
}
