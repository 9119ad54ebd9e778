// The jobs learn the tiny "count on" task (TinyTask.swift) from a random model, judged on held-out
// examples drawn from another stream:
//   SFT lowers the held-out completion loss from ≈ ln 32 = 3.47 nats to below 0.1;
//   offline DPO raises the held-out reward margin from 0 to above 1 and the accuracy to ≥ 0.9;
//   a reward model trained from a causal LM reaches ≥ 0.9 pairwise accuracy on held-out pairs.

import Foundation
import Model
import Testing
import TestSupport
@testable import Training

@Suite(.serialized) struct LearningTests {
    @Test func sftLowersHeldOutLoss() throws {
        try withTemporaryDirectory { dir in
            let (model, data) = try tinySetup(.sft, dir, n: 256)
            let heldOut = TinyTask.completions(64, stream: 2)
            let before = TinyTask.metric(try SFTJob.evaluate(model: TinyTask.load(model), examples: heldOut, batchSize: 64), "loss")
            let out = dir.appendingPathComponent("out")
            _ = try train(.sft, model: model, data: data, out: out) { r, o in
                r.epochs = 12; r.batchSize = 16; o.lr = 1e-2; o.warmupSteps = 10; o.schedule = .cosine
            }
            let after = TinyTask.metric(try SFTJob.evaluate(model: TinyTask.load(out), examples: heldOut, batchSize: 64), "loss")
            #expect(abs(before - log(32)) < 0.2, "a fresh model is near uniform: \(before)")
            #expect(after < 0.1, "held-out loss \(before) → \(after), target < 0.1")
        }
    }

    @Test func dpoRaisesHeldOutMarginAndAccuracy() throws {
        try withTemporaryDirectory { dir in
            let (model, data) = try tinySetup(.dpo, dir, n: 256)
            let heldOut = TinyTask.preferences(64, stream: 2)
            let out = dir.appendingPathComponent("out")
            _ = try train(.dpo, model: model, data: data, out: out) { r, o in
                r.epochs = 6; r.batchSize = 16; o.lr = 5e-3; o.warmupSteps = 5; o.schedule = .cosine
            }
            // Held-out metrics of the trained policy against the starting model as reference.
            let start = try TinyTask.load(model), trained = try TinyTask.load(out)
            let ws = LlamaWorkspace(config: start.config, maxBatch: 128, maxSeqLen: 8)
            let ref = try DPOJob.referenceLogps(heldOut, reference: model, policy: start, isPolicy: true, batchSize: 64,
                                                workspace: ws, pad: 2)
            let before = try DPOJob.evaluate(model: start, examples: heldOut, referenceLogps: ref, config: DPOLossConfig(), batchSize: 64)
            let after = try DPOJob.evaluate(model: trained, examples: heldOut, referenceLogps: ref, config: DPOLossConfig(), batchSize: 64)
            #expect(TinyTask.metric(before, "rewards/margins") == 0 && TinyTask.metric(before, "rewards/accuracies") == 0)
            let margin = TinyTask.metric(after, "rewards/margins"), acc = TinyTask.metric(after, "rewards/accuracies")
            #expect(margin > 1, "held-out margin \(margin), target > 1")
            #expect(acc >= 0.9, "held-out accuracy \(acc), target ≥ 0.9")
            #expect(TinyTask.metric(after, "loss") < log(2) - 0.3)
        }
    }

    @Test func rewardModelReachesHeldOutAccuracy() throws {
        try withTemporaryDirectory { dir in
            let (model, data) = try tinySetup(.rm, dir, n: 256)
            let heldOut = TinyTask.pairs(64, stream: 2)
            let out = dir.appendingPathComponent("out")
            _ = try train(.rm, model: model, data: data, out: out) { r, o in
                r.epochs = 20; r.batchSize = 16; o.lr = 5e-3; o.warmupSteps = 5; o.schedule = .cosine
            }
            let rm = try ModelDirectory.load(out)
            #expect(rm.config.head == .score && rm.parameters.view("score.weight") != nil && rm.parameters.view("lm_head.weight") == nil)
            let m = try RewardJob.evaluate(model: LlamaModel(config: rm.config, parameters: rm.parameters), examples: heldOut, batchSize: 64)
            let acc = TinyTask.metric(m, "accuracy")
            #expect(acc >= 0.9, "held-out accuracy \(acc), target ≥ 0.9")
        }
    }
}
