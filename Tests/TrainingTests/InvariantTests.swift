// Runs that must match (STYLE §10): gradient accumulation 1 × 8 against 8 × 1, and a run
// interrupted after N steps and resumed for M more against N + M steps uninterrupted (bit for bit:
// weights, optimizer state and metrics). Also: a non-finite loss refuses the step and nothing is
// written.

import Foundation
import Model
import Testing
import TestSupport
@testable import Training

enum Job: String, CaseIterable, Sendable { case sft, dpo, rm }

/// Runs `job` from `model` on `data` into `out` with `edit` applied to the options.
func train(_ job: Job, model: URL, data: URL, out: URL?, _ edit: (inout RunOptions, inout OptimizerOptions) -> Void,
           resume: Bool = false, evalOnly: Bool = false) throws -> String {
    switch job {
    case .sft:
        var o = SFTOptions(model: model, data: data, out: out)
        o.optimizer.lr = 3e-3
        edit(&o.run, &o.optimizer); o.resume = resume; o.evalOnly = evalOnly
        return try SFTJob.run(o)
    case .dpo:
        var o = DPOOptions(model: model, data: data, out: out)
        o.optimizer.lr = 3e-3
        edit(&o.run, &o.optimizer); o.resume = resume; o.evalOnly = evalOnly
        return try DPOJob.run(o)
    case .rm:
        var o = RewardOptions(model: model, data: data, out: out)
        o.optimizer.lr = 3e-3
        edit(&o.run, &o.optimizer); o.resume = resume; o.evalOnly = evalOnly
        return try RewardJob.run(o)
    }
}

/// Writes the tiny model and `n` examples of the job's data format into `dir`.
func tinySetup(_ job: Job, _ dir: URL, n: Int = 16) throws -> (model: URL, data: URL) {
    let model = dir.appendingPathComponent("start"), data = dir.appendingPathComponent("data.jsonl")
    try TinyTask.writeModel(model)
    switch job {
    case .sft: try TinyTask.writeCompletions(TinyTask.completions(n, stream: 1), to: data)
    case .dpo: try TinyTask.writePreferences(TinyTask.preferences(n, stream: 1), to: data)
    case .rm: try TinyTask.writePairs(TinyTask.pairs(n, stream: 1), to: data)
    }
    return (model, data)
}

@Suite(.serialized) struct InvariantTests {
    /// The accumulated gradient of a step is the same (the first AdamW moment after one step is
    /// 0.1 · the clipped gradient, so comparing `exp_avg` compares gradients), and so are the
    /// losses, gradient norms and learning rates of four steps. The weights after four steps are
    /// compared in a way that is not chaotic: AdamW divides by sqrt(v), so an element whose
    /// gradient is near zero turns a last-bit difference into up to a whole learning-rate step
    /// (the size of that amplification depends on the CPU's BLAS kernels). So each element may
    /// differ by at most AdamW's bound on two opposite moves, 2 · Σ lr_t · max|m̂/√v̂| (≤ 1.01 for
    /// t ≤ 4 with β = (0.9, 0.999), by Cauchy–Schwarz), and each tensor's update (weights after
    /// minus before) must agree to 1% in root-mean-square: a few chaotic elements fit, a wrong
    /// gradient does not.
    @Test(arguments: Job.allCases)
    func accumulationOneByEightEqualsEightByOne(job: Job) throws {
        try withTemporaryDirectory { dir in
            let (model, data) = try tinySetup(job, dir)
            func both(_ edit: (inout RunOptions) -> Void) throws -> (URL, URL) {
                let a = dir.appendingPathComponent("8x1-\(UUID())"), b = dir.appendingPathComponent("1x8-\(UUID())")
                _ = try train(job, model: model, data: data, out: a) { r, _ in r.batchSize = 8; r.gradAccum = 1; r.epochs = 2; edit(&r) }
                _ = try train(job, model: model, data: data, out: b) { r, _ in r.batchSize = 1; r.gradAccum = 8; r.epochs = 2; edit(&r) }
                return (a, b)
            }
            let (a1, b1) = try both { $0.stopAtStep = 1 }
            let layout = try ModelDirectory.load(a1).parameters.layout
            let oa = try AdamW.load(from: a1, layout: layout, config: AdamWConfig()), ob = try AdamW.load(from: b1, layout: layout, config: AdamWConfig())
            for e in layout.entries {
                expectClose(ob.expAvg.view(e), oa.expAvg.view(e), 1e-5, "\(job) gradient of \(e.name)")
            }
            let (a, b) = try both { _ in }
            let p0 = try ModelDirectory.load(model).parameters
            let pa = try ModelDirectory.load(a).parameters, pb = try ModelDirectory.load(b).parameters
            let la = try metricLines(a), lb = try metricLines(b)
            #expect(la.count == 4 && lb.count == 4)
            let moveBound = 2 * 1.01 * la.map { $0["learning_rate"]!.double! }.reduce(0, +)
            for e in pa.layout.entries {
                let x = pa.view(e), y = pb.view(e), start = p0.view(e)
                let worst = zip(x, y).map { Double(abs($0 - $1)) }.reduce(0, maxOrNaN)
                #expect(worst <= moveBound, "\(job) \(e.name) after 4 steps: |Δ| \(worst) > AdamW's bound \(moveBound)")
                let update = zip(x, start).map { Double($0 - $1) }, gap = zip(x, y).map { Double($0 - $1) }
                let ratio = rms(gap) / rms(update)
                #expect(ratio <= 1e-2, "\(job) \(e.name) after 4 steps: updates differ by \(ratio) RMS (> 1%)")
            }
            for (x, y) in zip(la, lb) {
                for key in ["loss", "grad_norm", "learning_rate"] {
                    expectClose([Float(y[key]!.double!)], [Float(x[key]!.double!)], 1e-5, "\(job) step \(x["step"]!.int!) \(key)")
                }
            }
        }
    }

    @Test(arguments: Job.allCases)
    func resumeEqualsUninterruptedBitForBit(job: Job) throws {
        try withTemporaryDirectory { dir in
            let (model, data) = try tinySetup(job, dir)
            let full = dir.appendingPathComponent("full"), part = dir.appendingPathComponent("part"), rest = dir.appendingPathComponent("rest")
            func opts(_ r: inout RunOptions, _ o: inout OptimizerOptions) {
                r.batchSize = 4; r.gradAccum = 2; r.epochs = 3; o.warmupSteps = 2; o.schedule = .cosine
                o.adamw.weightDecay = 0.1
            }
            _ = try train(job, model: model, data: data, out: full, opts)
            _ = try train(job, model: model, data: data, out: part) { r, o in opts(&r, &o); r.stopAtStep = 2 }
            #expect(try metricLines(part).count == 2)
            _ = try train(job, model: part, data: data, out: rest, opts, resume: true)
            for file in ["model.safetensors", "optimizer.safetensors", "metrics.jsonl"] {
                let x = try Data(contentsOf: full.appendingPathComponent(file)), y = try Data(contentsOf: rest.appendingPathComponent(file))
                #expect(x == y, "\(job): \(file) of 2 + 4 steps differs from 6 steps")
            }
            #expect(try metricLines(rest).count == 6)
            // Resuming a finished run, or with a different plan, is refused with a reason.
            let never = dir.appendingPathComponent("never")
            #expect { try train(job, model: full, data: data, out: never, opts, resume: true) } throws: { "\($0)".contains("already finished") }
            #expect { try train(job, model: part, data: data, out: never, { r, o in opts(&r, &o); r.epochs = 4 }, resume: true) } throws: {
                "\($0)".contains("same --data, --epochs")
            }
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("never").path))
        }
    }

    @Test func nonFiniteLossRefusesTheStepAndWritesNothing() throws {
        try withTemporaryDirectory { dir in
            let (model, data) = try tinySetup(.sft, dir)
            // A huge learning rate overflows the weights after the first update; the next step's
            // loss is not finite, so the run stops before anything is written.
            let out = dir.appendingPathComponent("out")
            #expect { try train(.sft, model: model, data: data, out: out) { r, o in
                r.batchSize = 4; o.lr = 1e30; o.maxGradNorm = 0; o.schedule = .constant
            } } throws: { e in
                "\(e)".contains("step 2") && "\(e)".contains("no weights were written") && "\(e)".contains("data.jsonl lines")
            }
            #expect(!FileManager.default.fileExists(atPath: out.path))
            // NaN weights from the start: refused when the model loads, naming the tensor.
            let bad = dir.appendingPathComponent("bad")
            let m = try ModelDirectory.load(model)
            m.parameters.view("lm_head.weight")![5] = .nan
            try ModelDirectory.save(config: m.config, parameters: m.parameters, to: bad, copyingAuxiliaryFilesFrom: nil)
            #expect { try train(.sft, model: bad, data: data, out: out) { _, _ in } } throws: {
                "\($0)".contains("tensor 'lm_head.weight' holds nan at element 5")
            }
            #expect(!FileManager.default.fileExists(atPath: out.path))
        }
    }

    @Test func malformedDataNamesFileAndLine() throws {
        try withTemporaryDirectory { dir in
            let (model, data) = try tinySetup(.dpo, dir)
            var text = try String(contentsOf: data, encoding: .utf8)
            text += "{\"prompt_ids\": [0, 5], \"chosen_ids\": [7, 1]}\n"
            try text.write(to: data, atomically: true, encoding: .utf8)
            #expect { try train(.dpo, model: model, data: data, out: nil, { _, _ in }, evalOnly: true) } throws: {
                "\($0)".contains("data.jsonl:17") && "\($0)".contains("rejected")
            }
            try "{\"prompt_ids\": [0, 5], \"chosen_ids\": [7, 99], \"rejected_ids\": [3]}\n".write(to: data, atomically: true, encoding: .utf8)
            #expect { try train(.dpo, model: model, data: data, out: nil, { _, _ in }, evalOnly: true) } throws: {
                "\($0)".contains("data.jsonl:1") && "\($0)".contains("99")
            }
            try "{\"prompt\": \"hi\", \"completion\": \"there\"}\n".write(to: data, atomically: true, encoding: .utf8)
            #expect { try train(.sft, model: model, data: data, out: nil, { _, _ in }, evalOnly: true) } throws: {
                "\($0)".contains("data.jsonl:1") && "\($0)".contains("tokenizer.json")
            }
            try "not json\n".write(to: data, atomically: true, encoding: .utf8)
            #expect { try train(.rm, model: model, data: data, out: nil, { _, _ in }, evalOnly: true) } throws: {
                "\($0)".contains("data.jsonl:1") && "\($0)".contains("JSON object")
            }
        }
    }

    /// `plan.microBatches` covers every example once per epoch, in a seeded order.
    @Test func planVisitsEveryExampleOncePerEpoch() {
        var run = RunOptions()
        run.batchSize = 3; run.gradAccum = 2; run.epochs = 2; run.seed = 5
        let plan = TrainingPlan(examples: 14, run: run)
        #expect(plan.stepsPerEpoch == 3 && plan.totalSteps == 6)
        for epoch in 0..<2 {
            let seen = (epoch * 3..<(epoch + 1) * 3).flatMap { plan.microBatches(step: $0).joined() }
            #expect(seen.sorted() == Array(0..<14))
        }
        #expect(plan.microBatches(step: 2).map(\.count) == [2], "the last step of an epoch takes the remainder")
        #expect(plan.order(epoch: 0) != plan.order(epoch: 1) && plan.order(epoch: 0) == TrainingPlan(examples: 14, run: run).order(epoch: 0))
    }
}

/// Root mean square (NaN if any value is).
func rms(_ v: [Double]) -> Double { (v.reduce(0) { $0 + $1 * $1 } / Double(max(1, v.count))).squareRoot() }

/// The lines of `dir/metrics.jsonl` as JSON objects.
func metricLines(_ dir: URL) throws -> [[String: JSONValue]] {
    try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map {
        try JSONDecoder().decode([String: JSONValue].self, from: Data($0.utf8))
    }
}
