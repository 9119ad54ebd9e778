// `rondo serve` as a child process for end-to-end tests: started on a free loopback port, its
// address read from its log line, stopped with SIGTERM.

import Foundation

/// A copy of model directory `from` in `dir` with a small chat template, so /v1/chat/completions works.
public func chatModel(_ from: URL, in dir: URL) throws -> URL {
    let to = dir.appendingPathComponent(from.lastPathComponent + "-chat")
    try copyDirectory(from, to: to)
    let template = "{% for m in messages %}<|bos|>{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
    try template.write(to: to.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
    return to
}

public final class ServedModel: @unchecked Sendable {
    public let process = Process()
    public let log: URL
    /// e.g. http://127.0.0.1:40123/v1
    public private(set) var baseURL = ""

    /// Starts `rondo serve ARGS --port 0` and waits (up to a minute) until it listens.
    public init(_ args: [String], logIn dir: URL, environment: [String: String] = [:]) throws {
        log = dir.appendingPathComponent("serve-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = rondoExecutable
        process.arguments = ["serve", "--port", "0"] + args
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<1200 where process.isRunning {
            if let line = text.split(separator: "\n").first(where: { $0.contains("serving ") }),
               let at = line.range(of: "http://"), let end = line[at.lowerBound...].firstIndex(of: " ") {
                baseURL = String(line[at.lowerBound..<end])
                return
            }
            usleep(50_000)
        }
        stop()
        throw POSIXError(.ETIMEDOUT)
    }

    /// What the server has logged so far.
    public var text: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// SIGTERM, then waits up to `within` seconds; returns the seconds it took (nil: still running, killed).
    @discardableResult
    public func stop(within: Double = 10) -> Double? {
        guard process.isRunning else { return 0 }
        let t0 = Date()
        kill(process.processIdentifier, SIGTERM)
        while process.isRunning && Date().timeIntervalSince(t0) < within { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        process.waitUntilExit()
        return Date().timeIntervalSince(t0)
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}
