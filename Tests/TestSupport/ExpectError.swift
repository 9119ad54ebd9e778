// Checks that a body throws an error of one type whose message names what, where and what to do.

import Testing

/// Expects `body` to throw an `E` whose description contains every fragment; `check` may look
/// further at the error.
public func expectError<E: Error & CustomStringConvertible>(
    _ errorType: E.Type, mentioning fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void, check: (E) -> Void = { _ in }
) {
    do {
        try body()
        Issue.record("expected \(E.self) mentioning \(fragments), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let e as E {
        for f in fragments { #expect(e.description.contains(f), "'\(f)' missing from: \(e)", sourceLocation: sourceLocation) }
        check(e)
    } catch {
        Issue.record("expected \(E.self), got \(Swift.type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
}
