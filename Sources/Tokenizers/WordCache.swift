// The per-piece result cache of BPE encoding (HF tokenizers keeps one too, `models/bpe/cache.rs`;
// results never depend on it): piece bytes → token ids, looked up on every piece, so it avoids
// allocation and reference counting entirely.

import Foundation

/// Piece bytes → ids, without allocating or reference counting per lookup: keys and values live
/// in two arenas, slots in an open-addressing table, all in manually managed memory. Cleared when
/// it reaches `maxEntries` entries (results never depend on the cache).
final class WordCache {
    static let maxEntries = 1 << 18
    /// Arena limits (bytes of keys, ids of values) that also trigger a clear.
    static let maxKeyBytes = 1 << 23, maxValues = 1 << 21

    private struct Entry {
        var hash: UInt32
        var keyCount: Int32
        var keyStart: Int32
        var valueStart: Int32
        var valueCount: Int32
    }

    private var slots: UnsafeMutablePointer<Int32>
    private var slotMask: Int
    private var entries: UnsafeMutablePointer<Entry>
    private var entryCount = 0
    private var entryCapacity: Int
    private var keys: UnsafeMutablePointer<UInt8>
    private var keyCount = 0
    private var keyCapacity: Int
    private var values: UnsafeMutablePointer<Int32>
    private var valueCount = 0
    private var valueCapacity: Int

    init() {
        slotMask = (1 << 12) - 1
        slots = .allocate(capacity: slotMask + 1)
        slots.initialize(repeating: -1, count: slotMask + 1)
        entryCapacity = 1 << 10
        entries = .allocate(capacity: entryCapacity)
        keyCapacity = 1 << 14
        keys = .allocate(capacity: keyCapacity)
        valueCapacity = 1 << 13
        values = .allocate(capacity: valueCapacity)
    }

    deinit {
        slots.deallocate()
        entries.deallocate()
        keys.deallocate()
        values.deallocate()
    }

    /// FNV-1a over the bytes.
    @inline(__always) static func hash(_ p: UnsafePointer<UInt8>, _ count: Int) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for i in 0..<count { h = (h ^ UInt32(p[i])) &* 0x0100_0193 }
        return h
    }

    /// Appends the cached ids of the piece to `out`; false when it is not cached.
    @inline(__always)
    func appendHit(_ p: UnsafePointer<UInt8>, _ count: Int, _ hash: UInt32, _ out: inout [Int32]) -> Bool {
        var slot = Int(hash) & slotMask
        while true {
            let e = Int(slots[slot])
            if e < 0 { return false }
            let entry = entries[e]
            if entry.hash == hash && Int(entry.keyCount) == count && memcmp(keys + Int(entry.keyStart), p, count) == 0 {
                if entry.valueCount == 1 {
                    out.append(values[Int(entry.valueStart)])
                } else {
                    out.append(contentsOf: UnsafeBufferPointer(start: values + Int(entry.valueStart), count: Int(entry.valueCount)))
                }
                return true
            }
            slot = (slot + 1) & slotMask
        }
    }

    func insert(_ p: UnsafePointer<UInt8>, _ count: Int, _ hash: UInt32, _ ids: ArraySlice<Int32>) {
        if entryCount >= WordCache.maxEntries || keyCount + count > WordCache.maxKeyBytes
            || valueCount + ids.count > WordCache.maxValues {
            clear()
        }
        if (entryCount + 1) * 2 > slotMask + 1 { rehash(slots: (slotMask + 1) * 2) }
        if entryCount == entryCapacity { WordCache.grow(&entries, &entryCapacity, entryCount, entryCount + 1) }
        if keyCount + count > keyCapacity { WordCache.grow(&keys, &keyCapacity, keyCount, keyCount + count) }
        if valueCount + ids.count > valueCapacity { WordCache.grow(&values, &valueCapacity, valueCount, valueCount + ids.count) }
        entries[entryCount] = Entry(hash: hash, keyCount: Int32(count), keyStart: Int32(keyCount),
                                    valueStart: Int32(valueCount), valueCount: Int32(ids.count))
        (keys + keyCount).update(from: p, count: count)
        keyCount += count
        ids.withUnsafeBufferPointer { b in
            if let base = b.baseAddress { (values + valueCount).update(from: base, count: b.count) }
        }
        valueCount += ids.count
        place(Int32(entryCount), hash)
        entryCount += 1
    }

    private func clear() {
        slots.update(repeating: -1, count: slotMask + 1)
        entryCount = 0
        keyCount = 0
        valueCount = 0
    }

    private func place(_ e: Int32, _ hash: UInt32) {
        var slot = Int(hash) & slotMask
        while slots[slot] >= 0 { slot = (slot + 1) & slotMask }
        slots[slot] = e
    }

    private func rehash(slots count: Int) {
        slots.deallocate()
        slots = .allocate(capacity: count)
        slots.initialize(repeating: -1, count: count)
        slotMask = count - 1
        for e in 0..<entryCount { place(Int32(e), entries[e].hash) }
    }

    /// Reallocates `buffer` to at least `needed` elements (doubling), keeping the first `used`.
    private static func grow<T>(_ buffer: inout UnsafeMutablePointer<T>, _ capacity: inout Int, _ used: Int, _ needed: Int) {
        var c = capacity
        while c < needed { c *= 2 }
        let b = UnsafeMutablePointer<T>.allocate(capacity: c)
        b.moveInitialize(from: buffer, count: used)
        buffer.deallocate()
        buffer = b
        capacity = c
    }
}
