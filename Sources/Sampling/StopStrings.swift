// Stop strings, matched on the byte stream of a response as its tokens arrive.
//
// Matching is on bytes (the concatenated `bytes(id)` of the response tokens), not on decoded
// text: a stop string can end in the middle of a multi-byte character or span several tokens, and
// bytes need no re-decoding of the whole response per token. When a stop string is completed, the
// sample ends with the token that completed it: the response keeps that whole token (and so the
// stop string and whatever else that token holds), so that response ids, log-probs and text stay
// aligned token for token — cutting inside a token would leave text that no token sequence
// produces. (transformers' StopStringCriteria stops at the same token.)

/// Finds stop strings in a growing byte stream.
public struct StopStringMatcher: Sendable {
    private let patterns: [[UInt8]]
    private let keep: Int          // bytes of history that a match can still start in
    private var tail: [UInt8] = []

    /// Matches the UTF-8 bytes of `stops` (which must be non-empty strings).
    public init(_ stops: [String]) {
        patterns = stops.map { Array($0.utf8) }.filter { !$0.isEmpty }
        keep = max(0, (patterns.map(\.count).max() ?? 1) - 1)
    }

    /// True when no stop strings are set.
    public var isEmpty: Bool { patterns.isEmpty }

    /// Appends one token's bytes; true when a stop string ends within them.
    public mutating func append(_ bytes: [UInt8]) -> Bool {
        guard !patterns.isEmpty, !bytes.isEmpty else { return false }
        let window = tail + bytes
        let old = tail.count
        var hit = false
        for p in patterns where p.count <= window.count {
            // Only matches that end in the new bytes: older ones would have stopped earlier.
            var start = max(0, old - p.count + 1)
            while start + p.count <= window.count {
                if window[start] == p[0] && window[start..<(start + p.count)].elementsEqual(p) { hit = true; break }
                start += 1
            }
            if hit { break }
        }
        tail = Array(window.suffix(keep))
        return hit
    }
}
