// Access to the oracle fixtures (HF transformers / TRL reference values) in Tests/Fixtures/oracle.
// See Tests/Fixtures/oracle/README.md for layouts, conventions and tolerances.

import Foundation
import Model
import Testing
import TestSupport

enum Oracle {
    static let dir = Fixtures.oracle
    static let policyDir = Fixtures.policy
    static let referenceDir = Fixtures.reference
    static let rewardDir = Fixtures.reward

    static let cases: JSONValue = {
        let data = try! Data(contentsOf: Fixtures.cases)
        return try! JSONDecoder().decode(JSONValue.self, from: data)["cases"]!
    }()
    static let tensors = try! SafetensorsFile(url: Fixtures.tensors)

    /// Floats of a case value: inline (possibly nested) numbers or a reference into tensors.safetensors.
    static func floats(_ v: JSONValue?) -> [Float] {
        guard let v else { return [] }
        if let key = v["tensor"]?.string { return try! tensors.tensor(key).values }
        if let d = v.double { return [Float(d)] }
        return (v.array ?? []).flatMap { floats($0) }
    }

    static func ints(_ v: JSONValue?) -> [Int] {
        guard let v else { return [] }
        if let i = v.int { return [i] }
        return (v.array ?? []).flatMap { ints($0) }
    }

    static func tensor(_ key: String) -> [Float] { try! tensors.tensor(key).values }
}

/// max|a − e| / max|e| (the README's error measure).
func relativeError(_ a: some Collection<Float>, _ e: some Collection<Float>) -> Float {
    precondition(a.count == e.count, "size mismatch \(a.count) vs \(e.count)")
    var num: Float = 0, den: Float = 0
    for (x, y) in zip(a, e) {
        num = max(num, abs(x - y))
        den = max(den, abs(y))
    }
    return den > 0 ? num / den : num
}

/// Expects `actual` within `tolerance` (relative) of `expected`, naming the quantity on failure.
func expectClose(
    _ actual: some Collection<Float>, _ expected: some Collection<Float>, _ tolerance: Float, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)",
            sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    let err = relativeError(actual, expected)
    #expect(err <= tolerance, "\(what): relative error \(err) > \(tolerance)", sourceLocation: sourceLocation)
}
