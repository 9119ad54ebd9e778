// The round algorithms behind the one round loop: every AlgorithmKind has a registered round, the
// updates honour a stop request between optimizer steps (the round is then abandoned), and status
// takes its columns from the config's algorithm, not from the metrics it finds.

import Foundation
import Model
import Rollouts
import Testing
import TestSupport
import Training
@testable import Campaign

@Suite struct RoundAlgorithmTests {
    @Test func everyAlgorithmHasARegisteredRound() {
        for kind in AlgorithmKind.allCases {
            #expect(RoundAlgorithms.registry[kind]?.kind == kind, "\(kind)")
        }
    }

    @Test func dpoUpdateStopsBetweenOptimizerSteps() throws {
        let loaded = try ModelDirectory.load(repo.appendingPathComponent("policies/starter"))
        let model = LlamaModel(config: loaded.config, parameters: loaded.parameters)
        let before = model.parameters.clone()
        let optimizer = AdamW(layout: model.layout, config: AdamWConfig())
        let examples = (0..<3).map { i in
            PreferenceExample(prompt: [5, 6, Int32(7 + i)], chosen: [40, 41], rejected: [50, 51, 52], line: i + 1)
        }
        var a = AlgorithmSection()
        a.batchSize = 1; a.epochs = 1; a.optimizer.lr = 1e-3
        var asked: [(Int, Int)] = []
        #expect(throws: RoundInterrupted.self) {
            _ = try DPORound.run(model: model, optimizer: optimizer, examples: examples, referenceSums: [(-3, -4), (-3, -4), (-3, -4)],
                                 algorithm: a, seed: 1, round: 1, shouldStop: { asked.append(($0, $1)); return asked.count > 1 })
        }
        // One step ran (the weights moved), the second was never started; the gate was told the
        // steps done and planned (3 pairs, batch 1), which the update's progress reports.
        #expect(optimizer.step == 1 && asked.count == 2)
        #expect(asked.map(\.0) == [0, 1] && asked.map(\.1) == [3, 3])
        #expect(!model.parameters.all.elementsEqual(before.all))
    }

    @Test func statusColumnsComeFromTheConfigsAlgorithm() throws {
        try withTemporaryDirectory { dir in
            let store = CampaignStore(root: dir)
            try "policy: x\nalgorithm: {type: ppo}\n".write(to: store.configURL, atomically: true, encoding: .utf8)
            #expect(CampaignCommands.algorithmKind(store) == .ppo)
            let out = try CampaignCommands.status(dir: dir, json: false)
            #expect(out.contains("kl_coef") && out.contains("scores") && !out.contains("train/pairs"), "\(out)")
            try "policy: x\n".write(to: store.configURL, atomically: true, encoding: .utf8)
            #expect(CampaignCommands.algorithmKind(store) == .dpo)
            #expect(try CampaignCommands.status(dir: dir, json: false).contains("pairs"))
        }
    }
}
