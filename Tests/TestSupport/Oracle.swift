// Access to the oracle fixtures (HF transformers / TRL reference values) in Tests/Fixtures/oracle,
// shared by every test target. See Tests/Fixtures/oracle/README.md for layouts, conventions and
// tolerances.

import Foundation
import Model
import Testing

/// The oracle's cases and tensors.
public enum Oracle {
    public static let dir = Fixtures.oracle
    public static let policyDir = Fixtures.policy
    public static let referenceDir = Fixtures.reference
    public static let rewardDir = Fixtures.reward

    /// `cases.json` → `cases`.
    public static let cases: JSONValue = {
        let data = try! Data(contentsOf: Fixtures.cases)
        return try! JSONDecoder().decode(JSONValue.self, from: data)["cases"]!
    }()
    /// `tensors.safetensors`.
    public static let tensors = try! SafetensorsFile(url: Fixtures.tensors)

    /// Floats of a case value: inline (possibly nested) numbers or a reference into `file`
    /// (this set's tensors.safetensors by default); JSON null becomes NaN.
    public static func floats(_ v: JSONValue?, in file: SafetensorsFile = tensors) -> [Float] {
        guard let v else { return [] }
        if let key = v["tensor"]?.string { return try! file.tensor(key).values }
        if let d = v.double { return [Float(d)] }
        if v == .null { return [.nan] }
        return (v.array ?? []).flatMap { floats($0, in: file) }
    }

    /// Integers of a case value, flattened.
    public static func ints(_ v: JSONValue?) -> [Int] {
        guard let v else { return [] }
        if let i = v.int { return [i] }
        return (v.array ?? []).flatMap { ints($0) }
    }

    /// A tensor of tensors.safetensors by key.
    public static func tensor(_ key: String) -> [Float] { try! tensors.tensor(key).values }
}

/// max|a − e| / max|e| (the README's error measure). NaN anywhere in either side gives NaN, which
/// fails every `err <= tolerance` (Swift's `max` would silently drop a NaN difference); an infinite
/// value gives an infinite or NaN error.
public func relativeError(_ a: some Collection<Float>, _ e: some Collection<Float>) -> Float {
    precondition(a.count == e.count, "size mismatch \(a.count) vs \(e.count)")
    var num: Float = 0, den: Float = 0
    for (x, y) in zip(a, e) {
        let d = abs(x - y)
        if d.isNaN || !y.isFinite { return .nan }
        num = max(num, d)
        den = max(den, abs(y))
    }
    return den > 0 ? num / den : num
}

/// The larger of `a` and `b`, NaN if either is (Swift's `max` keeps the first argument on NaN).
public func maxOrNaN<T: FloatingPoint>(_ a: T, _ b: T) -> T { a.isNaN || b.isNaN ? .nan : max(a, b) }

/// Expects `actual` within `tolerance` (relative) of `expected`, naming the quantity on failure.
public func expectClose(
    _ actual: some Collection<Float>, _ expected: some Collection<Float>, _ tolerance: Float, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)",
            sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    let err = relativeError(actual, expected)
    #expect(err <= tolerance, "\(what): relative error \(err) > \(tolerance)", sourceLocation: sourceLocation)
    if reportErrors { print("oracle-error \(what): \(err) (tolerance \(tolerance))") }
}

/// `RONDO_REPORT_ERRORS=1 swift test` prints every oracle comparison's relative error.
let reportErrors = ProcessInfo.processInfo.environment["RONDO_REPORT_ERRORS"] != nil
