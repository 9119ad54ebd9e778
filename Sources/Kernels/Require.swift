// Checks that stay on in release builds.
//
// Release builds use -Ounchecked (Package.swift), which removes every `precondition` and lets the
// optimizer assume the condition holds. An invariant whose failure would read or write out of
// bounds, or silently compute on mismatched buffers, uses `require` instead: it stops the process
// with the message in every build.

/// Stops the process with `message` unless `condition` holds, in every build configuration.
@inline(__always)
public func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fatalError(message(), file: file, line: line) }
}

/// Whether this module was built with Swift's bounds, overflow and `precondition` checks: false
/// under -Ounchecked (release), true in debug builds, which `swift test` uses (Package.swift).
/// Not inlinable, so it reports the configuration Kernels was compiled with, not the caller's.
public var swiftRuntimeChecksEnabled: Bool { !_isFastAssertConfiguration() }
