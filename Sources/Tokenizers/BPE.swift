// The BPE model of HF tokenizers (`models/bpe/{model,word}.rs`) on byte-level input: a piece's
// bytes start as one symbol each (the vocab id of the byte's alphabet character), then the
// adjacent pair with the lowest merge rank is merged — leftmost first among equal ranks — until no
// pair has a merge. With `ignore_merges` (Llama-3) a piece that is itself in the vocabulary maps
// straight to its id. A byte whose character is not in the vocabulary becomes `unk_token` (fused
// with neighbouring unknowns when `fuse_unk`) or, without one, is dropped — as HF does.
//
// Ranks live in an open-addressing table keyed by the id pair; results are cached per piece
// (WordCache.swift).

import Foundation

/// Merge ranks keyed by (left id, right id): value `rank << 32 | merged id`.
struct MergeTable {
    static let none = UInt64.max
    private var keys: [UInt64]
    private var values: [UInt64]
    private let mask: Int

    /// `merges[rank] = (left, right, merged)`; a pair listed twice keeps its last rank (HF builds a
    /// map from the list, later entries overwrite).
    init(_ merges: [(Int32, Int32, Int32)]) {
        var capacity = 16
        while capacity < merges.count * 2 { capacity <<= 1 }
        keys = [UInt64](repeating: .max, count: capacity)
        values = [UInt64](repeating: MergeTable.none, count: capacity)
        mask = capacity - 1
        for (rank, m) in merges.enumerated() {
            let key = MergeTable.key(m.0, m.1)
            var slot = MergeTable.hash(key) & mask
            while keys[slot] != .max && keys[slot] != key { slot = (slot + 1) & mask }
            keys[slot] = key
            values[slot] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: m.2))
        }
    }

    @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    @inline(__always) static func hash(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 29)
    }

    /// `rank << 32 | merged id` for the pair, or `none`.
    @inline(__always) func lookup(_ a: Int32, _ b: Int32) -> UInt64 {
        let key = MergeTable.key(a, b)
        var slot = MergeTable.hash(key) & mask
        while true {
            let k = keys[slot]
            if k == key { return values[slot] }
            if k == .max { return MergeTable.none }
            slot = (slot + 1) & mask
        }
    }
}

/// Per-thread encoding state: the piece cache and scratch buffers of the merge loops.
final class BPEState {
    let cache = WordCache()
    var symbols: [Int32] = []
    var pairs: [UInt64] = []
    var prev: [Int32] = []
    var next: [Int32] = []
    var heap: [UInt64] = []
    /// Piece end offsets of the current stretch.
    var ends: [Int] = []
}

/// The BPE model: initial symbols per byte, merge ranks, options.
final class BPEModel {
    /// Pieces of at least this many bytes are neither cached nor merged with the quadratic loop.
    static let longPiece = 256

    /// `byteSymbol[b]`: vocab id of byte b's alphabet character, or -1 (256 entries).
    let byteSymbol: UnsafeMutablePointer<Int32>
    let merges: MergeTable
    /// With `ignore_merges`: raw bytes of every vocabulary token (in the byte-level alphabet) → id.
    let wholeWords: [[UInt8]: Int32]?
    let unk: Int32?
    let fuseUnk: Bool

    init(byteSymbol: [Int32], merges: MergeTable, wholeWords: [[UInt8]: Int32]?, unk: Int32?, fuseUnk: Bool) {
        if byteSymbol.count != 256 { fatalError("byte-level alphabet must have 256 symbols") }
        self.byteSymbol = .allocate(capacity: 256)
        self.byteSymbol.initialize(from: byteSymbol, count: 256)
        self.merges = merges
        self.wholeWords = wholeWords
        self.unk = unk
        self.fuseUnk = fuseUnk
    }

    deinit { byteSymbol.deallocate() }

    /// Appends the ids of one pre-tokenized piece `p[0..<count]` (count > 0).
    @inline(__always)
    func encodePiece(_ p: UnsafePointer<UInt8>, _ count: Int, _ cache: WordCache, _ state: BPEState, _ out: inout [Int32]) {
        if count == 1 {
            let id = byteSymbol[Int(p[0])]
            if id >= 0 { out.append(id); return }
        }
        if count >= BPEModel.longPiece { return encodeUncached(p, count, state, &out) }
        let hash = WordCache.hash(p, count)
        if cache.appendHit(p, count, hash, &out) { return }
        let start = out.count
        encodeUncached(p, count, state, &out)
        cache.insert(p, count, hash, out[start...])
    }

    private func encodeUncached(_ p: UnsafePointer<UInt8>, _ count: Int, _ state: BPEState, _ out: inout [Int32]) {
        if let whole = wholeWords, let id = whole[Array(UnsafeBufferPointer(start: p, count: count))] {
            out.append(id)
            return
        }
        var syms = state.symbols
        state.symbols = []  // keep the buffer uniquely referenced while we mutate it
        syms.removeAll(keepingCapacity: true)
        var pendingUnk = false
        for i in 0..<count {
            let id = byteSymbol[Int(p[i])]
            if id >= 0 {
                if pendingUnk, let u = unk { syms.append(u); pendingUnk = false }
                syms.append(id)
            } else if let u = unk {
                if pendingUnk && !fuseUnk { syms.append(u) }
                pendingUnk = true
            }
        }
        if pendingUnk, let u = unk { syms.append(u) }
        if syms.count < BPEModel.longPiece {
            mergeShort(&syms, state)
        } else {
            mergeLong(&syms, state)
        }
        out.append(contentsOf: syms)
        state.symbols = syms
    }

    /// Quadratic merge loop for short pieces: pick the lowest (rank, position) pair, merge, update
    /// the two neighbouring pair ranks, repeat.
    func mergeShort(_ syms: inout [Int32], _ state: BPEState) {
        var n = syms.count
        guard n >= 2 else { return }
        var pairs = state.pairs
        state.pairs = []
        pairs.removeAll(keepingCapacity: true)
        for i in 0..<(n - 1) { pairs.append(merges.lookup(syms[i], syms[i + 1])) }
        syms.withUnsafeMutableBufferPointer { s in
            pairs.withUnsafeMutableBufferPointer { r in
                while n >= 2 {
                    var best = MergeTable.none
                    var at = -1
                    for i in 0..<(n - 1) where r[i] < best {  // strict: leftmost among equal ranks
                        best = r[i]
                        at = i
                    }
                    if at < 0 { break }
                    s[at] = Int32(bitPattern: UInt32(truncatingIfNeeded: best))
                    for i in (at + 1)..<(n - 1) {
                        s[i] = s[i + 1]
                        r[i] = r[i + 1]
                    }
                    n -= 1
                    if at > 0 { r[at - 1] = merges.lookup(s[at - 1], s[at]) }
                    if at < n - 1 { r[at] = merges.lookup(s[at], s[at + 1]) }
                }
            }
        }
        syms.removeLast(syms.count - n)
        state.pairs = pairs
    }

    /// HF's algorithm for long pieces: a min-heap of (rank, position) over a linked list of
    /// symbols; entries made stale by earlier merges are skipped when popped.
    func mergeLong(_ syms: inout [Int32], _ state: BPEState) {
        let n = syms.count
        guard n >= 2 else { return }
        var prev = state.prev, next = state.next, heap = state.heap
        state.prev = []; state.next = []; state.heap = []
        prev.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)
        for i in 0..<n {
            prev.append(Int32(i - 1))
            next.append(i + 1 < n ? Int32(i + 1) : -1)
        }
        var alive = [Bool](repeating: true, count: n)
        func push(_ pos: Int) {
            let nx = Int(next[pos])
            guard nx >= 0 else { return }
            let m = merges.lookup(syms[pos], syms[nx])
            guard m != MergeTable.none else { return }
            heapPush(&heap, (m >> 32) << 32 | UInt64(pos))
        }
        for i in 0..<(n - 1) { push(i) }
        while let top = heapPop(&heap) {
            let pos = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            guard alive[pos], next[pos] >= 0 else { continue }
            let nx = Int(next[pos])
            let m = merges.lookup(syms[pos], syms[nx])
            guard m != MergeTable.none, m >> 32 == rank else { continue }  // stale entry
            syms[pos] = Int32(bitPattern: UInt32(truncatingIfNeeded: m))
            alive[nx] = false
            next[pos] = next[nx]
            if next[nx] >= 0 { prev[Int(next[nx])] = Int32(pos) }
            if prev[pos] >= 0 { push(Int(prev[pos])) }
            push(pos)
        }
        var w = 0
        for i in 0..<n where alive[i] {
            syms[w] = syms[i]
            w += 1
        }
        syms.removeLast(n - w)
        state.prev = prev; state.next = next; state.heap = heap
    }
}

@inline(__always)
private func heapPush(_ h: inout [UInt64], _ v: UInt64) {
    h.append(v)
    var i = h.count - 1
    while i > 0 {
        let parent = (i - 1) / 2
        if h[parent] <= v { break }
        h[i] = h[parent]
        i = parent
    }
    h[i] = v
}

@inline(__always)
private func heapPop(_ h: inout [UInt64]) -> UInt64? {
    guard let last = h.popLast() else { return nil }
    guard !h.isEmpty else { return last }
    let top = h[0]
    var i = 0
    let n = h.count
    while true {
        let l = 2 * i + 1
        if l >= n { break }
        var c = l
        if l + 1 < n && h[l + 1] < h[l] { c = l + 1 }
        if h[c] >= last { break }
        h[i] = h[c]
        i = c
    }
    h[i] = last
    return top
}
