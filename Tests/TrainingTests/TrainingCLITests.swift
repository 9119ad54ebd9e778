// The training commands end to end through the built `rondo` binary: `--eval-only` on the oracle's
// DPO triples and reward pairs prints TRL's losses; a short training run writes a complete
// checkpoint; bad input fails with the file and line; `rondo bench dpo` prints its JSON line.

import Foundation
import Model
import Testing
import TestSupport

@Suite(.serialized) struct TrainingCLITests {
    static let dpo = Oracle.cases["dpo"]!

    /// The oracle's DPO triples as `_ids` JSON lines.
    static func writeTriples(_ url: URL) throws {
        let lines = dpo["triples"]!.array!.map { t in
            ["prompt_ids", "chosen_ids", "rejected_ids"].map { "\"\($0)\": \(Oracle.ints(t[$0]))" }.joined(separator: ", ")
        }
        try lines.map { "{\($0)}\n" }.joined().write(to: url, atomically: true, encoding: .utf8)
    }

    static func json(_ r: ProcessResult) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(r.stdout.utf8))
    }

    @Test(arguments: ["sigmoid", "ipo", "hinge", "robust"])
    func dpoEvalOnlyPrintsTRLLoss(type: String) throws {
        try withTemporaryDirectory { dir in
            let data = dir.appendingPathComponent("triples.jsonl")
            try Self.writeTriples(data)
            var args = ["dpo", "--eval-only", "--model", Fixtures.policy.path, "--reference", Fixtures.reference.path,
                        "--data", data.path, "--loss-type", type, "--beta", "0.1"]
            if type == "robust" { args += ["--label-smoothing", "0.1"] }
            let r = try runRondo(args)
            #expect(r.status == 0, "stderr: \(r.stderr)")
            let o = try Self.json(r)
            let tol: Float = type == "ipo" ? 1e-4 : 1e-5
            expectClose([Float(o["loss"]!.double!)], Oracle.floats(Self.dpo["losses"]![type]!["loss"]), tol, "\(type) loss")
            expectClose([Float(o["rewards/chosen"]!.double!)], Oracle.floats(Self.dpo["rewards_chosen_mean"]), 1e-5, "rewards/chosen")
            expectClose([Float(o["rewards/rejected"]!.double!)], Oracle.floats(Self.dpo["rewards_rejected_mean"]), 1e-5, "rewards/rejected")
            expectClose([Float(o["rewards/margins"]!.double!)], Oracle.floats(Self.dpo["reward_margin"]), 1e-5, "rewards/margins")
            #expect(o["rewards/accuracies"]!.double! == 0.75)
            for key in ["logps/chosen", "logps/rejected", "grad_norm"] { #expect(o[key]?.double != nil, "\(key) in \(r.stdout)") }
        }
    }

    @Test func rewardEvalOnlyPrintsTRLLoss() throws {
        try withTemporaryDirectory { dir in
            let rm = Oracle.cases["reward_model"]!
            let seqs = rm["sequences"]!.array!.map { Oracle.ints($0) }
            let data = dir.appendingPathComponent("pairs.jsonl")
            try rm["pairs"]!.array!.map { p in "{\"chosen_ids\": \(seqs[Oracle.ints(p)[0]]), \"rejected_ids\": \(seqs[Oracle.ints(p)[1]])}\n" }
                .joined().write(to: data, atomically: true, encoding: .utf8)
            let r = try runRondo(["rm", "train", "--eval-only", "--model", Fixtures.reward.path, "--data", data.path])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            let o = try Self.json(r)
            expectClose([Float(o["loss"]!.double!)], Oracle.floats(rm["loss"]), 1e-5, "BT loss")
            #expect(o["accuracy"]!.double! == rm["accuracy"]!.double!)
            expectClose([Float(o["margin"]!.double!)], Oracle.floats(rm["margin"]), 1e-5, "BT margin")
        }
    }

    /// Text data through the fixture tokenizer: the same loss as the equivalent ids with EOS appended.
    @Test func sftTextMatchesIds() throws {
        try withTemporaryDirectory { dir in
            let text = dir.appendingPathComponent("text.jsonl"), ids = dir.appendingPathComponent("ids.jsonl")
            try "{\"prompt\": \"<|bos|>what is 7*8?\", \"completion\": \" it is 56.\"}\n".write(to: text, atomically: true, encoding: .utf8)
            // Token ids from the oracle's tokenizer case "what is 7*8? it is 56." (bos = 0, eos = 1).
            let prompt = [0, 273, 262, 223, 25, 12, 26, 33], completion = [275, 262, 310, 24, 16, 1]
            try "{\"prompt_ids\": \(prompt), \"completion_ids\": \(completion)}\n".write(to: ids, atomically: true, encoding: .utf8)
            let a = try runRondo(["sft", "--eval-only", "--model", Fixtures.policy.path, "--data", text.path])
            let b = try runRondo(["sft", "--eval-only", "--model", Fixtures.policy.path, "--data", ids.path])
            #expect(a.status == 0 && b.status == 0, "stderr: \(a.stderr) \(b.stderr)")
            #expect(a.stdout == b.stdout && a.stdout.contains("\"completion_tokens\": 6"), "\(a.stdout) vs \(b.stdout)")
        }
    }

    @Test func trainingWritesACheckpointAndResumes() throws {
        try withTemporaryDirectory { dir in
            let data = dir.appendingPathComponent("triples.jsonl"), out = dir.appendingPathComponent("out")
            try Self.writeTriples(data)
            let r = try runRondo(["dpo", "--model", Fixtures.policy.path, "--data", data.path, "--out", out.path,
                                  "--epochs", "2", "--batch-size", "2", "--lr", "1e-4", "--stop-at-step", "3", "--threads", "1"])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(r.stderr.contains("trained steps 1…3 of 4"), "stderr: \(r.stderr)")
            for f in ["config.json", "model.safetensors", "tokenizer.json", "optimizer.safetensors", "metrics.jsonl", "training_args.json"] {
                #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), "\(f) written")
            }
            let lines = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 3)
            let first = try JSONDecoder().decode(JSONValue.self, from: Data(lines[0].utf8))
            for key in ["step", "epoch", "loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                        "logps/chosen", "logps/rejected", "grad_norm", "learning_rate"] {
                #expect(first[key] != nil, "\(key) in \(lines[0])")
            }
            let out2 = dir.appendingPathComponent("out2")
            let r2 = try runRondo(["dpo", "--model", out.path, "--data", data.path, "--out", out2.path, "--resume",
                                   "--epochs", "2", "--batch-size", "2", "--lr", "1e-4"])
            #expect(r2.status == 0, "stderr: \(r2.stderr)")
            #expect(r2.stderr.contains("trained steps 4…4 of 4"), "stderr: \(r2.stderr)")
            let record = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: out2.appendingPathComponent("training_args.json")))
            #expect(record["step"]?.int == 4 && record["reference"]?.string == Fixtures.policy.standardizedFileURL.path)
        }
    }

    @Test func badInputAndOptionsFailWithAReason() throws {
        try withTemporaryDirectory { dir in
            let data = dir.appendingPathComponent("d.jsonl")
            try "{\"prompt_ids\": [0, 5], \"completion_ids\": [7, 1]}\n{\"prompt_ids\": [0, 5]}\n".write(to: data, atomically: true, encoding: .utf8)
            let r = try runRondo(["sft", "--model", Fixtures.policy.path, "--data", data.path, "--out", dir.appendingPathComponent("o").path])
            #expect(r.status != 0 && r.stderr.contains("d.jsonl:2") && r.stderr.contains("completion"), "stderr: \(r.stderr)")
            let r2 = try runRondo(["dpo", "--model", Fixtures.policy.path, "--data", data.path])
            #expect(r2.status != 0 && r2.stderr.contains("--out"), "stderr: \(r2.stderr)")
            let r3 = try runRondo(["dpo", "--eval-only", "--model", Fixtures.policy.path, "--data", data.path, "--loss-type", "kto"])
            #expect(r3.status != 0 && r3.stderr.contains("kto"), "stderr: \(r3.stderr)")
            let r4 = try runRondo(["rm", "train", "--eval-only", "--model", Fixtures.policy.path, "--data", data.path])
            #expect(r4.status != 0 && r4.stderr.contains("d.jsonl:1") && r4.stderr.contains("chosen"), "stderr: \(r4.stderr)")
        }
    }

    @Test func benchDPOPrintsItsJSONLine() throws {
        let config = Fixtures.policy.appendingPathComponent("config.json")
        let r = try runRondo(["bench", "dpo", "--config", config.path, "--pairs", "2", "--prompt-len", "8", "--response-len", "16",
                              "--steps", "2", "--warmup", "1"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let o = try Self.json(r)
        for key in ["pairs_per_s", "ms_per_step", "peak_rss_mib", "mfu", "sgemm_gflop_per_s"] {
            #expect((o[key]?.double ?? 0) > 0, "\(key) in \(r.stdout)")
        }
        for key in ["policy_forward", "ref_forward", "backward", "optimizer"] { #expect(o["phase_ms_median"]?[key]?.double != nil) }
        #expect(o["loss_first_last"]?.array?.first?.double.map { abs($0 - log(2)) < 1e-6 } == true, "policy = reference at step 1: loss ln 2")
        let t = try runRondo(["bench", "train", "--config", config.path, "--batch", "2", "--seq", "16", "--steps", "2", "--warmup", "1"])
        #expect(t.status == 0, "stderr: \(t.stderr)")
        #expect(try Self.json(t)["phase_ms_median"]?["opt"]?.double != nil, "bench train reports the optimizer phase")
        // LoRA: only the adapter trains (r 4 on q and v of 2 layers: 2·(4·64 + 32·4 + 4·64 + 64·4) = 1,792 floats).
        let l = try runRondo(["bench", "dpo", "--config", config.path, "--pairs", "2", "--prompt-len", "8", "--response-len", "16",
                              "--steps", "2", "--warmup", "1", "--lora-r", "4", "--target-modules", "q_proj,v_proj"])
        #expect(l.status == 0, "stderr: \(l.stderr)")
        let lo = try Self.json(l)
        #expect(lo["trainable_params"]?.int == 1_792 && lo["lora"]?["r"]?.int == 4, "\(l.stdout)")
        #expect(lo["loss_first_last"]?.array?.first?.double.map { abs($0 - log(2)) < 1e-6 } == true, "a fresh adapter is a no-op")
        #expect((lo["flops_per_step"]?.double ?? 0) < (o["flops_per_step"]?.double ?? 0), "no base weight-gradient products")
    }
}
