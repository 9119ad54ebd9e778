// Access to the GRPO / RLOO fixtures (TRL 1.16 reference values) in Tests/Fixtures/grpo; layouts,
// formulas and tolerances in its README.md. The models are the oracle set's policy and reference.

import Foundation
import Model

/// The GRPO fixture's cases and tensors.
public enum GRPOOracle {
    /// `cases.json` → `cases`.
    public static let cases: JSONValue = {
        let data = try! Data(contentsOf: Fixtures.grpo.appendingPathComponent("cases.json"))
        return try! JSONDecoder().decode(JSONValue.self, from: data)["cases"]!
    }()
    /// `tensors.safetensors` (the parameter gradients of the cases that store them).
    public static let tensors = try! SafetensorsFile(url: Fixtures.grpo.appendingPathComponent("tensors.safetensors"))

    /// Floats of a case value (inline numbers, null → NaN, or a reference into tensors.safetensors).
    public static func floats(_ v: JSONValue?) -> [Float] { Oracle.floats(v, in: tensors) }

    /// A tensor of tensors.safetensors by key (`grad.<case>.<parameter>`).
    public static func tensor(_ key: String) -> [Float] { try! tensors.tensor(key).values }

    /// The README's loss tolerance: max(2e-5·|e|, 1e-6, 2e-5·loss_scale).
    public static func lossTolerance(_ expected: Double, scale: Double) -> Double {
        max(2e-5 * abs(expected), 1e-6, 2e-5 * scale)
    }

    /// The README's metric tolerance: 1e-5 + 2e-5·|e|.
    public static func metricTolerance(_ expected: Double) -> Double { 1e-5 + 2e-5 * abs(expected) }

    /// The README's advantage tolerance: 1e-5 + 1e-5·|e|.
    public static func advantageTolerance(_ expected: Double) -> Double { 1e-5 + 1e-5 * abs(expected) }
}

/// |a − e| ≤ tolerance, false when either is NaN.
public func withinAbsolute(_ a: Double, _ e: Double, _ tolerance: Double) -> Bool {
    let d = abs(a - e)
    return !d.isNaN && d <= tolerance
}

/// max |a − e| over two equal-length arrays; NaN if either holds a NaN (fails every `<=`).
public func maxAbsoluteError(_ a: [Float], _ e: [Float]) -> Float {
    precondition(a.count == e.count, "size mismatch \(a.count) vs \(e.count)")
    var worst: Float = 0
    for (x, y) in zip(a, e) {
        let d = abs(x - y)
        if d.isNaN { return .nan }
        worst = max(worst, d)
    }
    return worst
}
