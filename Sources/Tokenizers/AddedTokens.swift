// Added tokens (special or not), found in the raw text before pre-tokenization, as HF tokenizers'
// `AddedVocabulary::extract_and_normalize` does: first the tokens with `normalized: false` over the
// whole text, then the `normalized: true` ones over each remaining stretch (with no normalizer the
// text is the same, but the two passes can split differently). Each pass takes non-overlapping
// leftmost-longest matches (aho-corasick `LeftmostLongest`) and applies, per token:
//   single_word — drop the match when a \w character touches it on either side (within the stretch);
//   lstrip / rstrip — widen the match over the whitespace (\s) to its left / right.

import Foundation

/// One added token as tokenizer.json lists it.
struct AddedToken {
    var id: Int32
    var content: String
    var singleWord = false
    var lstrip = false
    var rstrip = false
    var normalized = true
    var special = false
}

/// A set of added tokens to match, as a byte trie.
struct AddedTokenSet {
    struct Entry {
        let id: Int32
        let singleWord, lstrip, rstrip: Bool
    }

    private var entries: [Entry] = []
    /// `children[node][byte]` → child node; node 0 is the root.
    private var children: [[UInt8: Int32]] = [[:]]
    /// Entry index of the token ending at a node, or -1.
    private var terminal: [Int32] = [-1]
    /// Bytes a token can start with.
    private var first = [Bool](repeating: false, count: 256)

    var isEmpty: Bool { entries.isEmpty }

    init(_ tokens: [AddedToken]) {
        for t in tokens where !t.content.isEmpty {
            var node = 0
            for b in t.content.utf8 {
                if let c = children[node][b] {
                    node = Int(c)
                } else {
                    children.append([:])
                    terminal.append(-1)
                    children[node][b] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            entries.append(Entry(id: t.id, singleWord: t.singleWord, lstrip: t.lstrip, rstrip: t.rstrip))
            terminal[node] = Int32(entries.count - 1)
            first[Int(t.content.utf8.first ?? 0)] = true
        }
    }

    /// The longest token starting at `i`: its entry and byte length.
    private func longest(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> (Entry, Int)? {
        var node = 0
        var best: (Entry, Int)?
        var j = i
        while j < end, let c = children[node][p[j]] {
            node = Int(c)
            j += 1
            if terminal[node] >= 0 { best = (entries[Int(terminal[node])], j - i) }
        }
        return best
    }

    /// Splits `p[range]` into stretches of text and added tokens, in order, the way HF's
    /// `find_matches` does (stretches are never empty).
    func split(_ p: UnsafePointer<UInt8>, _ range: Range<Int>,
               text: (Range<Int>) -> Void, token: (Int32) -> Void) {
        let (lo, hi) = (range.lowerBound, range.upperBound)
        var search = lo  // where the automaton resumes: just past the previous match
        var startOffset = lo  // end of what has been emitted
        while search < hi {
            var found: (start: Int, entry: Entry, length: Int)?
            var i = search
            while i < hi {
                if first[Int(p[i])], let (e, n) = longest(p, i, hi) {
                    found = (i, e, n)
                    break
                }
                i += 1
            }
            guard let m = found else { break }
            search = m.start + m.length
            var start = m.start
            var stop = m.start + m.length
            if m.entry.singleWord {
                let wordBefore = start > lo && isWord(beforeOffset: start, p, lo)
                let wordAfter = stop < hi && isWord(atOffset: stop, p)
                if wordBefore || wordAfter { continue }
            }
            if m.entry.lstrip {
                var s = start
                while s > lo {
                    let c = previousScalarStart(p, s, lo)
                    guard classOf(p, c) & CharClass.space != 0 else { break }
                    s = c
                }
                start = max(s, startOffset)
            }
            if m.entry.rstrip {
                while stop < hi {
                    let (v, n) = scalarAt(p, stop)
                    guard CharClass.of(v, CharClass.bmp) & CharClass.space != 0 else { break }
                    stop += n
                }
            }
            if startOffset < start { text(startOffset..<start) }
            token(m.entry.id)
            startOffset = stop
        }
        if startOffset < hi { text(startOffset..<hi) }
    }

    private func classOf(_ p: UnsafePointer<UInt8>, _ i: Int) -> UInt8 {
        CharClass.of(scalarAt(p, i).value, CharClass.bmp)
    }

    private func isWord(atOffset i: Int, _ p: UnsafePointer<UInt8>) -> Bool {
        classOf(p, i) & CharClass.word != 0
    }

    private func isWord(beforeOffset i: Int, _ p: UnsafePointer<UInt8>, _ lo: Int) -> Bool {
        classOf(p, previousScalarStart(p, i, lo)) & CharClass.word != 0
    }

    /// Start of the scalar that ends at byte offset `i` (> lo).
    private func previousScalarStart(_ p: UnsafePointer<UInt8>, _ i: Int, _ lo: Int) -> Int {
        var j = i - 1
        while j > lo && p[j] & 0xC0 == 0x80 { j -= 1 }
        return j
    }
}

/// Both passes: `normalized: false` tokens first, then `normalized: true` ones.
struct AddedTokenMatcher {
    let raw: AddedTokenSet
    let normalized: AddedTokenSet

    init(_ tokens: [AddedToken]) {
        raw = AddedTokenSet(tokens.filter { !$0.normalized })
        normalized = AddedTokenSet(tokens.filter { $0.normalized })
    }

    func split(_ p: UnsafePointer<UInt8>, _ range: Range<Int>,
               text: (Range<Int>) -> Void, token: (Int32) -> Void) {
        guard !range.isEmpty else { return }
        if normalized.isEmpty {
            if raw.isEmpty { return text(range) }
            return raw.split(p, range, text: text, token: token)
        }
        if raw.isEmpty { return normalized.split(p, range, text: text, token: token) }
        raw.split(p, range, text: { normalized.split(p, $0, text: text, token: token) }, token: token)
    }
}
