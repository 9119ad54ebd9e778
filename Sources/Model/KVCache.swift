// The KV cache of the decoder (LlamaDecode.swift): keys and values of every layer for the
// sequences in flight.
//
// Layout per layer: keys K [S, NKV, Lpad · D] and values V [S, NKV, Lpad, D] (S cache slots, Lmax
// positions per slot, rounded up to Lpad, a multiple of 16), so that the keys and values a token
// row attends to are two contiguous blocks, read front to back by its attention kernels
// (Sources/CKernels/attention.c). Keys are cached after RoPE, in blocks of 16 positions stored
// dimension-major (position p, dimension e at (p / 16) · 16 · D + e · 16 + p % 16): a block's 16
// scores advance together, one vector fused multiply-add per dimension.

import Kernels

/// Keys (after RoPE) and values of every layer for up to `slots` sequences of `maxLen` positions.
public final class KVCache: @unchecked Sendable {
    /// Sequences the cache holds at once.
    public let slots: Int
    /// Positions per sequence.
    public let maxLen: Int
    /// Transformer layers (L).
    public let layers: Int
    /// Key/value heads per layer (NKV).
    public let kvHeads: Int
    /// Head dimension (D).
    public let headDim: Int
    /// Positions stored per slot; the next token of slot s goes to position `lengths[s]`.
    public internal(set) var lengths: [Int]

    let keys: [FloatPtr]    // per layer K [S, NKV, Lpad · D], blocks of 16 positions dimension-major
    let values: [FloatPtr]  // per layer V [S, NKV, Lpad, D]
    private let stride: Int  // Lpad · D: floats per (slot, kv head)
    private let storage: FloatArena

    /// Allocates (and zero-fills, so that no page is first touched during decoding) the cache.
    public init(config c: LlamaConfig, slots: Int, maxLen: Int) {
        require(slots >= 1 && maxLen >= 1, "a KV cache needs at least one slot and one position")
        self.slots = slots
        self.maxLen = maxLen
        layers = c.numLayers
        kvHeads = c.numKVHeads
        headDim = c.headDim
        lengths = Array(repeating: 0, count: slots)
        let block = DecodeKernel.keyBlock
        stride = (maxLen + block - 1) / block * block * headDim
        let per = slots * kvHeads * stride
        storage = FloatArena(sizes: [2 * layers * per])
        let base = storage.blocks[0]
        keys = (0..<layers).map { base + 2 * $0 * per }
        values = (0..<layers).map { base + (2 * $0 + 1) * per }
    }

    /// Bytes held by the cache.
    public var byteCount: Int { storage.count * 4 }

    /// Keys of kv head g of slot s in layer l, in blocks of 16 positions (see the file header).
    @inline(__always) func keyBase(_ l: Int, _ s: Int, _ g: Int) -> FloatPtr {
        keys[l] + (s * kvHeads + g) * stride
    }

    /// Offset of position p, dimension e in a slot's keys.
    @inline(__always) func keyOffset(position p: Int, dimension e: Int) -> Int {
        let block = DecodeKernel.keyBlock
        return (p / block) * block * headDim + e * block + p % block
    }

    /// Values [Lpad, D] of kv head g of slot s in layer l.
    @inline(__always) func valueBase(_ l: Int, _ s: Int, _ g: Int) -> FloatPtr {
        values[l] + (s * kvHeads + g) * stride
    }

    /// Empties slot `s`.
    public func reset(slot s: Int) {
        require(s >= 0 && s < slots, "slot \(s) outside 0..<\(slots)")
        lengths[s] = 0
    }

    /// Drops the positions of slot `s` from `length` on.
    public func trim(slot s: Int, to length: Int) {
        require(s >= 0 && s < slots && length >= 0 && length <= lengths[s], "invalid trim")
        lengths[s] = length
    }

    /// Makes slot `to` a copy of slot `from` (e.g. n samples sharing one prefilled prompt).
    public func copy(slot from: Int, to: Int) {
        require(from >= 0 && from < slots && to >= 0 && to < slots, "slot outside 0..<\(slots)")
        guard from != to else { return }
        let len = lengths[from], block = DecodeKernel.keyBlock
        let keyFloats = (len + block - 1) / block * block * headDim  // whole blocks
        for l in 0..<layers {
            for g in 0..<kvHeads {
                keyBase(l, to, g).update(from: keyBase(l, from, g), count: keyFloats)
                valueBase(l, to, g).update(from: valueBase(l, from, g), count: len * headDim)
            }
        }
        lengths[to] = lengths[from]
    }
}
