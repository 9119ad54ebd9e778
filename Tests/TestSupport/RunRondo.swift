// Runs the built `rondo` executable, for end-to-end tests of the command line.

import Foundation

/// What a finished `rondo` process left behind.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// The `rondo` binary next to the test bundle (SwiftPM builds both into the same products folder).
public var rondoExecutable: URL {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    // The runner may be `<products>/RondoPackageTests.xctest` (a file) or inside it.
    while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("rondo").path), dir.path != "/" {
        dir.deleteLastPathComponent()
    }
    return dir.appendingPathComponent("rondo")
}

/// Runs `rondo args…` to completion, feeding `stdin` if given.
public func runRondo(_ args: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
    try runProgram(rondoExecutable, args, stdin: stdin, environment: environment)
}

/// Runs `executable args…` to completion, feeding `stdin` if given.
public func runProgram(_ executable: URL, _ args: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
    let p = Process()
    p.executableURL = executable
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    try p.run()
    if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
    try inp.fileHandleForWriting.close()
    // Drain both pipes concurrently so a chatty child cannot block on a full pipe.
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}
