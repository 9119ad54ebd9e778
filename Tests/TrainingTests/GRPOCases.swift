// Reading the GRPO fixture's loss cases (`cases.grpo_loss.*`, `cases.rloo.*`) into the Training API:
// configs, micro-batches, and running a case's loss over its micro-batches with given log-probs.

import Foundation
import Model
import Testing
import TestSupport
@testable import Training

/// One `grpo_loss` or `rloo` case.
struct GRPOCase {
    let name: String
    let json: JSONValue
    let rloo: Bool
    let B: Int, C: Int

    init(_ name: String, rloo: Bool = false) {
        self.name = name
        self.rloo = rloo
        json = GRPOOracle.cases[rloo ? "rloo" : "grpo_loss"]![name]!
        let mask = json["inputs"]!["completion_mask"]!.array!
        B = mask.count
        C = mask[0].array!.count
    }

    static let grpoNames = GRPOOracle.cases["grpo_loss"]!.object!.keys.sorted()
    static let rlooNames = GRPOOracle.cases["rloo"]!.object!.keys.sorted()

    var inputs: JSONValue { json["inputs"]! }
    func floats(_ key: String) -> [Float] { GRPOOracle.floats(json[key]) }
    func input(_ key: String) -> [Float]? { inputs[key] == .null ? nil : GRPOOracle.floats(inputs[key]) }
    var mask: [Bool] { Oracle.ints(inputs["completion_mask"]).map { $0 != 0 } }
    var temperature: Double { json["config"]!["temperature"]!.double! }
    var accumulation: Int { json["effective"]!["current_gradient_accumulation_steps"]!.int! }
    var microBatches: [Range<Int>] { inputs["micro_batches"]!.array!.map { Oracle.ints($0) }.map { $0[0]..<$0[1] } }

    /// The case's config decoded through Codable from the TRL keys Rondo knows.
    var grpoConfig: GRPOConfig { get throws { try decodeConfig(GRPOConfig.self, knownKeys(GRPOConfig.CodingKeys.allCases.map(\.stringValue))) } }
    var rlooConfig: RLOOConfig { get throws { try decodeConfig(RLOOConfig.self, knownKeys(RLOOConfig.CodingKeys.allCases.map(\.stringValue))) } }
    private func knownKeys(_ keys: [String]) -> [String: JSONValue] { json["config"]!.object!.filter { keys.contains($0.key) } }

    /// The expected value of a loss or metric for micro-batch k (a list when accumulating).
    static func perMicroBatch(_ v: JSONValue, _ k: Int) -> Double { v.array?[k].double ?? v.double! }

    /// Runs the case over its micro-batches with current log-probs `logps` [B·C]; returns each
    /// micro-batch's result and the full ∂loss_total/∂logps [B·C].
    func run(logps: [Float], entropies: [Float]?) throws -> (parts: [PolicyLossResult], dLogps: [Float]) {
        var parts: [PolicyLossResult] = [], d: [Float] = []
        for range in microBatches {
            let rows = (range.lowerBound * C)..<(range.upperBound * C)
            let slice = { (a: [Float]?) in a.map { Array($0[rows]) } }
            var batch = PolicyLossBatch(width: C, logps: Array(logps[rows]), mask: Array(mask[rows]),
                                        advantages: Array(input("advantages")![range]), entropies: slice(entropies))
            let result: PolicyLossResult
            if rloo {
                let old = input("old_logps")!.map(Double.init)
                result = try RLOOLoss.compute(batch, oldSequenceLogps: Array(old[range]), gradientAccumulationSteps: accumulation,
                                              config: rlooConfig)
            } else {
                batch.oldLogps = slice(input("old_per_token_logps"))
                batch.refLogps = slice(input("ref_per_token_logps"))
                let scaling = PolicyLossScaling(numItemsInBatch: inputs["num_items_in_batch"]!.int!, gradientAccumulationSteps: accumulation,
                                                stepsPerGeneration: json["config"]!["steps_per_generation"]!.int!,
                                                numProcesses: json["effective"]!["num_processes"]!.int!)
                result = try GRPOLoss.compute(batch, scaling: scaling, config: grpoConfig)
            }
            parts.append(result)
            d += result.dLogps
        }
        return (parts, d)
    }

    /// Expects every micro-batch loss, loss_total and every logged metric within the README's tolerances.
    func expectLossAndMetrics(_ parts: [PolicyLossResult], sourceLocation: SourceLocation = #_sourceLocation) {
        let scale = json["loss_scale"]!.double!
        for (k, p) in parts.enumerated() {
            let e = Self.perMicroBatch(json["loss"]!, k)
            #expect(withinAbsolute(p.loss, e, GRPOOracle.lossTolerance(e, scale: scale)),
                    "\(name) loss[\(k)]: \(p.loss) vs \(e)", sourceLocation: sourceLocation)
            let metrics = Dictionary(uniqueKeysWithValues: p.metrics)
            let expected = json["metrics_loss"]!.object!
            #expect(Set(metrics.keys) == Set(expected.keys), "\(name) metric names: \(metrics.keys.sorted()) vs \(expected.keys.sorted())",
                    sourceLocation: sourceLocation)
            for (key, v) in expected {
                let x = Self.perMicroBatch(v, k)
                let a = metrics[key] ?? .nan
                #expect(withinAbsolute(a, x, GRPOOracle.metricTolerance(x)), "\(name) \(key)[\(k)]: \(a) vs \(x)",
                        sourceLocation: sourceLocation)
            }
        }
        let total = parts.reduce(0) { $0 + $1.loss }, e = json["loss_total"]!.double!
        #expect(withinAbsolute(total, e, GRPOOracle.lossTolerance(e, scale: scale)), "\(name) loss_total: \(total) vs \(e)",
                sourceLocation: sourceLocation)
    }
}
