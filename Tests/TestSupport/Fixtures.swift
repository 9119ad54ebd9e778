// Shared test helpers: fixture locations and scratch directories.

import Foundation

/// Paths of the oracle fixtures (`Tests/Fixtures/oracle`, see its README.md).
public enum Fixtures {
    /// `Tests/Fixtures/oracle`.
    public static let oracle: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestSupport
        .deletingLastPathComponent()  // Tests
        .appendingPathComponent("Fixtures/oracle", isDirectory: true)

    /// `LlamaForCausalLM` checkpoint directory (the DPO policy).
    public static var policy: URL { oracle.appendingPathComponent("policy", isDirectory: true) }
    /// `LlamaForCausalLM` checkpoint directory (the DPO reference).
    public static var reference: URL { oracle.appendingPathComponent("reference", isDirectory: true) }
    /// `LlamaForSequenceClassification` checkpoint directory (one label).
    public static var reward: URL { oracle.appendingPathComponent("reward", isDirectory: true) }
    /// Large expected arrays referenced from cases.json.
    public static var tensors: URL { oracle.appendingPathComponent("tensors.safetensors") }
    /// `{"meta": ..., "cases": {...}}`.
    public static var cases: URL { oracle.appendingPathComponent("cases.json") }
    /// `Tests/Fixtures/gguf`: GGUF files of the policy, their expected imports, malformed files
    /// (see its README.md).
    public static var gguf: URL {
        oracle.deletingLastPathComponent().appendingPathComponent("gguf", isDirectory: true)
    }
    /// `Tests/Fixtures/grpo`: TRL 1.16 GRPO / RLOO advantages, losses and gradients (see its README.md).
    public static var grpo: URL {
        oracle.deletingLastPathComponent().appendingPathComponent("grpo", isDirectory: true)
    }
    /// `Tests/Fixtures/tokenizer-llama3`: a Llama-3-style tokenizer.json and its cases.json.
    public static var tokenizerLlama3: URL {
        oracle.deletingLastPathComponent().appendingPathComponent("tokenizer-llama3", isDirectory: true)
    }
}

/// A fresh directory under the system temporary directory, removed when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    public let url: URL

    public init(_ label: String = "rondo-test") {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// `url/name`.
    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// A new subdirectory `url/name`.
    public func subdirectory(_ name: String) throws -> URL {
        let u = url.appendingPathComponent(name, isDirectory: true)
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Runs `body` with a fresh temporary directory that is removed afterwards.
public func withTemporaryDirectory<T>(_ label: String = "rondo-test", _ body: (URL) throws -> T) rethrows -> T {
    let dir = TemporaryDirectory(label)
    return try withExtendedLifetime(dir) { try body(dir.url) }
}

/// Copies every regular file of directory `from` into a new directory `to` (created).
public func copyDirectory(_ from: URL, to: URL) throws {
    let fm = FileManager.default
    try fm.createDirectory(at: to, withIntermediateDirectories: true)
    for name in try fm.contentsOfDirectory(atPath: from.path) {
        try fm.copyItem(at: from.appendingPathComponent(name), to: to.appendingPathComponent(name))
    }
}
