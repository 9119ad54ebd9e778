// Incremental decoding of a `LlamaModel` with a KV cache: the forward pass of the sampler.
//
// Port of the cached path of transformers' `LlamaForCausalLM.forward` (modeling_llama.py with
// a `DynamicCache`, cache_utils.py): each new token is embedded, runs through every layer with
// its query attending to the cached (post-RoPE) keys and values of its own sequence, and the
// LM head gives the logits of the next token. Prefill and decode are the same code path: a call
// appends tokens to cache slots, prefill appends a whole prompt, a decode step one token per slot.
//
// Dimension letters as in Workspace.swift, plus S cache slots (sequences in flight), Lmax
// positions per slot, R token rows in one call (the packed tokens of all slots, no padding).
// Cache layout per layer: keys K [S, NKV, Lmax, D] and values V [S, NKV, Lmax, D], so that the
// keys and values a row attends to are two contiguous blocks, read front to back by its products
// Q·Kᵀ and P·V.
//
// Batch-size and thread-count independence. A token row's result must not depend on which other
// rows share the call (batch size, refill order) nor on the thread count, so that a sample is a
// function of (model, prompt, seed) only. OpenBLAS does not give that for free: a row of a
// product can change in the last bits with M (its small-matrix kernels are chosen by M·N·K and
// differ from the blocked path; measured on 0.3.21) and with the thread count (its threaded driver
// splits K in (384, 768) differently, e.g. K = 688). So every product here is a sequence of sgemm
// calls of one fixed shape [4, 64, K] (`decodeTileRows` token rows × `decodeTileColumns` weight
// rows; the last column tile of a product is narrower, but the same for every call), each
// single-threaded, with the rows padded with zero rows to a multiple of 4 (`tiledLinear`). A
// row's bits then depend only on its own values: the call shape never changes, and a BLAS
// computes each row of a product independently of the other rows and of its position (checked:
// 22,100 rows × positions × shapes, no difference). The weights are read from a copy made when the
// decoder is created (`DecodeWeights`), each 64-row tile stored transposed and contiguous, so
// the calls are the [4, 64, K] "NN" product and the kernel reads a tile front to back: the hardware
// prefetcher streams it while the arithmetic runs. Each worker of the decoder's team takes the same
// contiguous column tiles at every call and loops over the row groups with its tile in cache.
// Measured, `bench sample` decode ms per step, M model, 2 threads: batch 1 5.3 (the HF layout with
// a sequential read of each tile before its calls) → 2.9 (tiled copy); batch 16 13.1 → 10.7.
// Elementwise work that only needs a tile's own columns runs in the product's region, by the
// worker that computed the tile: the residual add after o_proj and down_proj, and SwiGLU (the
// gate and up halves of a tile pair go to the same worker), instead of on the calling thread
// while the other workers wait.
//   Cost, measured (products only, per decode step, 2 threads, before the streaming read): this
// tiling vs one padded blocked sgemm per product (the other deterministic option) — S model: batch 1 0.2–0.8 vs
// 1.6 ms, batch 16 0.8–1.2 vs 2.0 ms, batch 64 3.5 vs 4.2 ms; M model: batch 1 7.3 vs 11.3 ms,
// batch 16 10.5 vs 15.2 ms, batch 64 25.8 vs 29.1 ms. The blocked path repacks every weight
// on every call, which dominates at small M; the [4, 64, K] calls use OpenBLAS's unpacked small
// kernel. One call per row (R = 1) streams the weights at memory speed at batch 1 (M: 5.3 ms)
// but is slower from 16 rows on (M: 13.9 ms at 16, 43 ms at 64).
//   Threads: a step has ~5 parallel regions per layer of tens of microseconds, so the decoder
// runs them on its own persistent team (`DecodeTeam`, spinning between regions) instead of
// Dispatch, which costs ~35–40 µs per region here and moves tasks between cores (S model, batch
// 1: 0.43 vs ~1.5–2 ms per step).
//   Attention runs per (row, kv head) as two small sgemm calls whose shapes depend only on the
// row's own position (measured ~25% faster than SIMD loops over the cache on this CPU, which Swift
// compiles for SSE only); RMSNorm, RoPE and SwiGLU are per row with fixed summation orders.
// Keys are cached untransposed, like values, so a unit reads two contiguous blocks (transposed
// keys, one strided stream per head dimension, cost M batch 16 3.0 ms per step in attention and
// 0.75 ms in the single-threaded store; now 2.1 and 0.14 ms, RoPE and the store running on the team).
// Prefill runs through the same routine, so a prompt prefilled at once and the same tokens fed
// one step at a time give the same bits. The sampler's tests check the result literally:
// identical samples at batch size 1 and 64 and with 1 and 2 threads.

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

    let keys: [FloatPtr]    // per layer K [S, NKV, Lmax, D]
    let values: [FloatPtr]  // per layer V [S, NKV, Lmax, D]
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
        let per = slots * kvHeads * maxLen * headDim
        storage = FloatArena(sizes: [2 * layers * per])
        let base = storage.blocks[0]
        keys = (0..<layers).map { base + 2 * $0 * per }
        values = (0..<layers).map { base + (2 * $0 + 1) * per }
    }

    /// Bytes held by the cache.
    public var byteCount: Int { storage.count * 4 }

    /// Keys [Lmax, D] of kv head g of slot s in layer l.
    @inline(__always) func keyBase(_ l: Int, _ s: Int, _ g: Int) -> FloatPtr {
        keys[l] + (s * kvHeads + g) * maxLen * headDim
    }

    /// Values [Lmax, D] of kv head g of slot s in layer l.
    @inline(__always) func valueBase(_ l: Int, _ s: Int, _ g: Int) -> FloatPtr {
        values[l] + (s * kvHeads + g) * maxLen * headDim
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
        let len = lengths[from]
        for l in 0..<layers {
            for g in 0..<kvHeads {
                keyBase(l, to, g).update(from: keyBase(l, from, g), count: len * headDim)
                valueBase(l, to, g).update(from: valueBase(l, from, g), count: len * headDim)
            }
        }
        lengths[to] = lengths[from]
    }
}

/// Rows of every decode product call (see the file header). Changing it changes the bits.
public let decodeTileRows = 4
/// Weight rows (output columns) of every decode product call.
public let decodeTileColumns = 64

/// Prefill and decode for one causal LM over a `KVCache`, with all scratch preallocated.
///
/// `prefill` runs right-padded prompts into cache slots (all their tokens in one pass through
/// the layers, in chunks of at most `maxTokensPerCall`), `step` feeds one token to each of a set
/// of slots; both return the logits of each row's last position. Rows are packed (no padding is
/// computed) and only the listed slots do work, so finished sequences cost nothing. A row's
/// logits are bit-identical whatever the other rows, their number and the thread count.
public final class LlamaDecoder: @unchecked Sendable {
    /// The model decoded. Its parameters are read from `weights`, a copy made before the first call.
    public let model: LlamaModel
    private let weights: DecodeWeights
    /// Keys and values of the sequences in flight.
    public let cache: KVCache
    /// Most token rows one forward pass processes (prefill runs in chunks of this many).
    public let maxTokensPerCall: Int

    private let capacity: Int       // R: rows of every per-token scratch buffer (a multiple of the tile)
    private let headCapacity: Int   // rows of the LM-head buffers: S + tile padding
    private let arena: FloatArena
    private let x: FloatPtr         // [R, C] residual stream
    private let h: FloatPtr         // [R, C] normed input of a projection
    private let qkv: FloatPtr       // [R, QKV]
    private let att: FloatPtr       // [R, A]
    private let proj: FloatPtr      // [R, C] o_proj / down_proj output
    private let gu: FloatPtr        // [R, 2F]
    private let act: FloatPtr       // [R, F]
    private let rstd: FloatPtr      // [R]
    private let headIn: FloatPtr    // [S + tile, C] last-token rows
    private let headNorm: FloatPtr  // [S + tile, C] their final norm
    private let logits: FloatPtr    // [S + tile, V]
    private var scores: FloatPtr    // [scoreTasks, NH/NKV, Lmax] attention scores, one block per worker
    private var scoreTasks: Int
    private let scoreRows: Int      // NH/NKV · Lmax
    private let tokSlot: UnsafeMutablePointer<Int>    // [R]
    private let tokPos: UnsafeMutablePointer<Int>     // [R]
    private let tokID: UnsafeMutablePointer<Int32>    // [R]
    private let headRow: UnsafeMutablePointer<Int>    // [S] token row of each logits row
    private let seen: UnsafeMutablePointer<Int>       // [S] duplicate-slot check stamps
    private var stamp = 0
    private var team: DecodeTeam?   // created at the first call, rebuilt if Threads.count changes
    private var job = Job.none      // the parallel region being run (read by the team's workers)
    private var jobTasks = 1

    /// Allocates a cache of `slots` sequences × `maxLen` positions and the scratch for calls of up
    /// to `maxTokensPerCall` tokens (default max(slots, 512)). `weights` is the model's tiled copy;
    /// by default the decoder makes its own, of the parameters as they are now.
    public init(model: LlamaModel, slots: Int, maxLen: Int, maxTokensPerCall: Int? = nil,
                weights: DecodeWeights? = nil) throws {
        let c = model.config
        guard c.head == .causalLM else { throw ModelError("decoding needs a causal LM; this model has a score head") }
        guard slots >= 1, maxLen >= 1 else { throw ModelError("a decoder needs at least one slot and one position") }
        guard maxLen <= model.rope.maxPositions else {
            throw ModelError("sequences of \(maxLen) positions exceed max_position_embeddings (\(model.rope.maxPositions))")
        }
        if let w = c.slidingWindow, maxLen > w {
            throw ModelError("sequences of \(maxLen) positions exceed the sliding window (\(w)); sliding-window attention is not implemented")
        }
        if let weights, weights.model !== model { throw ModelError("decoder: the tiled weights were made from another model") }
        let C = c.hiddenSize, A = c.attentionWidth, F = c.intermediateSize, QKV = c.qkvWidth, V = c.vocabSize
        let tokens = max(slots, maxTokensPerCall ?? 512)
        let tile = decodeTileRows
        self.model = model
        self.weights = weights ?? DecodeWeights(model: model)
        self.cache = KVCache(config: c, slots: slots, maxLen: maxLen)
        self.maxTokensPerCall = tokens
        capacity = (tokens + tile - 1) / tile * tile
        headCapacity = slots + tile
        let R = capacity, H = headCapacity
        let sizes = [R * C, R * C, R * QKV, R * A, R * C, R * 2 * F, R * F, R, H * C, H * C, H * V]
        let memory = FloatArena(sizes: sizes)
        arena = memory
        var k = 0
        func take() -> FloatPtr { defer { k += 1 }; return memory.blocks[k] }
        x = take(); h = take(); qkv = take(); att = take(); proj = take(); gu = take(); act = take()
        rstd = take(); headIn = take(); headNorm = take(); logits = take()
        scoreTasks = max(1, Threads.count)
        scoreRows = c.numHeads / c.numKVHeads * maxLen
        scores = .allocate(capacity: scoreTasks * scoreRows)
        scores.initialize(repeating: 0, count: scoreTasks * scoreRows)
        tokSlot = .allocate(capacity: R); tokPos = .allocate(capacity: R); tokID = .allocate(capacity: R)
        headRow = .allocate(capacity: slots)
        seen = .allocate(capacity: slots)
        seen.initialize(repeating: -1, count: slots)
    }

    deinit {
        scores.deallocate()
        tokSlot.deallocate(); tokPos.deallocate(); tokID.deallocate(); headRow.deallocate(); seen.deallocate()
    }

    /// Bytes held by the cache, the tiled weights and the scratch.
    public var byteCount: Int {
        cache.byteCount + weights.byteCount + (arena.count + scoreTasks * scoreRows) * 4 + capacity * 20
    }

    /// Logits per row (V).
    public var vocabSize: Int { model.config.vocabSize }

    // MARK: Public calls

    /// Empties `slots[b]` and runs row b's prompt (its first `lengths[b]` tokens, positions from 0)
    /// into it. Returns the logits of each row's last prompt token, [B, V], valid until the next call.
    public func prefill(_ batch: TokenBatch, slots: [Int]) throws -> UnsafeBufferPointer<Float> {
        let B = batch.batch, T = batch.seqLen, V = vocabSize
        guard slots.count == B, batch.lengths.count == B, batch.tokens.count == B * T else {
            throw ModelError("prefill: \(slots.count) slots for a batch of \(B) rows, or the batch arrays do not match [\(B), \(T)]")
        }
        try checkSlots(slots)
        for b in 0..<B {
            let n = batch.lengths[b]
            guard n >= 1, n <= T else { throw ModelError("prefill: row \(b) has length \(n), expected 1...\(T)") }
            guard n <= cache.maxLen else {
                throw ModelError("prefill: row \(b) has \(n) tokens; the cache holds \(cache.maxLen) positions")
            }
            for j in 0..<n {
                let id = batch.tokens[b * T + j]
                guard id >= 0, Int(id) < V else {
                    throw ModelError("prefill: token id \(id) at row \(b), position \(j) is outside the vocabulary (0..<\(V))")
                }
            }
        }
        for s in slots { cache.reset(slot: s) }
        // Pack rows into chunks of at most maxTokensPerCall tokens; a long prompt may span chunks.
        var rows = 0, heads = 0, firstHead = 0
        for b in 0..<B {
            let n = batch.lengths[b], s = slots[b]
            var j = 0
            while j < n {
                if rows == maxTokensPerCall {
                    run(rows: rows, heads: heads, logitsRow: firstHead)
                    firstHead += heads
                    rows = 0; heads = 0
                }
                let take = min(n - j, maxTokensPerCall - rows)
                let p0 = j  // the slot was reset: the prompt starts at position 0
                for t in 0..<take {
                    tokSlot[rows] = s; tokPos[rows] = p0 + t; tokID[rows] = batch.tokens[b * T + j + t]
                    rows += 1
                }
                j += take
                if j == n { headRow[heads] = rows - 1; heads += 1 }
            }
        }
        if rows > 0 { run(rows: rows, heads: heads, logitsRow: firstHead) }
        return UnsafeBufferPointer(start: logits, count: B * V)
    }

    /// Feeds `tokens[i]` to `slots[i]` at that slot's next position. Returns the logits of those
    /// positions, [n, V] in the order given, valid until the next call.
    public func step(slots: [Int], tokens: [Int32]) throws -> UnsafeBufferPointer<Float> {
        let n = slots.count, V = vocabSize
        guard tokens.count == n else { throw ModelError("step: \(n) slots but \(tokens.count) tokens") }
        try checkSlots(slots)
        for i in 0..<n {
            let s = slots[i], id = tokens[i]
            guard id >= 0, Int(id) < V else {
                throw ModelError("step: token id \(id) for slot \(s) is outside the vocabulary (0..<\(V))")
            }
            guard cache.lengths[s] < cache.maxLen else {
                throw ModelError("step: slot \(s) is full (\(cache.maxLen) positions)")
            }
            tokSlot[i] = s; tokPos[i] = cache.lengths[s]; tokID[i] = id
            headRow[i] = i
        }
        run(rows: n, heads: n, logitsRow: 0)
        return UnsafeBufferPointer(start: logits, count: n * V)
    }

    /// Slots must be in range and distinct within one call.
    private func checkSlots(_ slots: [Int]) throws {
        guard slots.count <= cache.slots else {
            throw ModelError("\(slots.count) rows in one call; the cache has \(cache.slots) slots")
        }
        stamp += 1
        for s in slots {
            guard s >= 0, s < cache.slots else { throw ModelError("slot \(s) outside 0..<\(cache.slots)") }
            guard seen[s] != stamp else { throw ModelError("slot \(s) appears twice in one call") }
            seen[s] = stamp
        }
    }

    // MARK: Forward

    /// Runs token rows 0..<rows (row i: token tokID[i] at position tokPos[i] of slot tokSlot[i];
    /// a slot's rows are consecutive positions starting at its cache length) through the model,
    /// appending their keys and values to the cache; then the final norm and LM head for the
    /// rows headRow[0..<heads], written to logits rows logitsRow..<(logitsRow + heads).
    private func run(rows n: Int, heads: Int, logitsRow: Int) {
        let c = model.config, w = weights
        let C = c.hiddenSize, V = c.vocabSize
        if Threads.count > scoreTasks {  // the thread count grew since init: one-off reallocation
            scores.deallocate()
            scoreTasks = Threads.count
            scores = .allocate(capacity: scoreTasks * scoreRows)
            scores.initialize(repeating: 0, count: scoreTasks * scoreRows)
        }
        // OpenBLAS single-threaded for the whole pass (also when Threads.count is 1 but OpenBLAS was
        // never configured and would default to all cores); the team's workers split the work.
        setBLASThreads(1)
        defer { setBLASThreads(Threads.count) }
        do {
            let emb = w.embed
            for i in 0..<n { (x + i * C).update(from: emb + Int(tokID[i]) * C, count: C) }
            for l in 0..<c.numLayers {
                parallel(.norm(y: h, x: x, w: w.inputNorm[l], rows: n))
                tiledLinear(y: qkv, x: h, w: weights.qkv[l], rows: n)
                parallel(.ropeStore(layer: l, rows: n))
                attend(layer: l, rows: n)
                tiledLinear(y: proj, x: att, w: weights.o[l], rows: n, then: .addTo(x, rows: n))
                parallel(.norm(y: h, x: x, w: w.postNorm[l], rows: n))
                gateUp(layer: l, rows: n)
                tiledLinear(y: proj, x: act, w: weights.down[l], rows: n, then: .addTo(x, rows: n))
            }
            for i in 0..<n { cache.lengths[tokSlot[i]] = max(cache.lengths[tokSlot[i]], tokPos[i] + 1) }
            guard heads > 0 else { return }
            for r in 0..<heads { (headIn + r * C).update(from: x + headRow[r] * C, count: C) }
            rmsnormForward(y: headNorm, rstd: rstd, x: headIn, w: w.finalNorm, rows: heads, channels: C,
                           eps: c.rmsNormEps)
            tiledLinear(y: logits + logitsRow * V, x: headNorm, w: weights.head, rows: heads)
        }
    }

    /// Rows of task t of `jobTasks`: RoPE on their query and key heads, each at its own position
    /// (same arithmetic as `ropeApply`), then their keys and values copied into their slots' cache
    /// positions.
    private func ropeStoreTask(_ t: Int, layer l: Int, rows n: Int) {
        let c = model.config, table = model.rope
        let d = c.headDim, half = d / 2, QKV = c.qkvWidth, NH = c.numHeads, NKV = c.numKVHeads
        let tasks = jobTasks
        table.cos.withUnsafeBufferPointer { cosb in
            table.sin.withUnsafeBufferPointer { sinb in
                let cp = cosb.baseAddress!, sp = sinb.baseAddress!
                for i in (n * t / tasks)..<(n * (t + 1) / tasks) {
                    let p = tokPos[i], slot = tokSlot[i], row = qkv + i * QKV
                    let cr = cp + p * half, sr = sp + p * half
                    for j in 0..<(NH + NKV) {
                        let v = row + j * d
                        for e in 0..<half {
                            let a = v[e], b = v[e + half], s = sr[e]
                            v[e] = a * cr[e] - b * s
                            v[e + half] = b * cr[e] + a * s
                        }
                    }
                    for g in 0..<NKV {
                        (cache.keyBase(l, slot, g) + p * d).update(from: row + (NH + g) * d, count: d)
                        (cache.valueBase(l, slot, g) + p * d).update(from: row + (NH + NKV + g) * d, count: d)
                    }
                }
            }
        }
    }

    /// att[i, head h] = softmax(q·Kᵀ/√D) · V over positions 0...tokPos[i] of row i's slot, one
    /// (row, kv head) unit at a time: the query heads sharing a kv head go through its keys and
    /// values together. Units are spread over the team.
    private func attend(layer l: Int, rows n: Int) {
        parallel(.attend(layer: l, rows: n))
    }

    /// Attention units of task t of `jobTasks` (see `attend`).
    private func attendTask(_ t: Int, layer l: Int, rows n: Int) {
        let c = model.config, d = c.headDim, QKV = c.qkvWidth, A = c.attentionWidth
        let NKV = c.numKVHeads, group = c.numHeads / c.numKVHeads
        let scale = 1 / Float(d).squareRoot()
        let units = n * NKV, tasks = jobTasks
        let lmax = cache.maxLen
        let sc = scores + t * group * lmax  // [group, Lmax]
        for unit in (units * t / tasks)..<(units * (t + 1) / tasks) {
            let i = unit / NKV, g = unit % NKV
            let len = tokPos[i] + 1, s = tokSlot[i]
            let q = qkv + i * QKV + g * group * d  // the group's query heads, adjacent
            let kb = cache.keyBase(l, s, g), vb = cache.valueBase(l, s, g)
            // sc[group, len] = scale · Q[group, D] · K[len, D]ᵀ; softmax per head; out = P · V.
            // The call shapes depend only on the row's own position.
            sgemm(.none, .transposed, m: group, n: len, k: d, alpha: scale, a: q, lda: d, b: kb, ldb: d,
                  c: sc, ldc: lmax)
            for h in 0..<group {
                let sh = sc + h * lmax
                let m = vmax(sh, len)
                let z = vexpShifted(sh, sh, m, len)
                vscale(sh, 1 / z, len)
            }
            sgemm(.none, .none, m: group, n: d, k: len, a: sc, lda: lmax, b: vb, ldb: d,
                  c: att + i * A + g * group * d, ldc: d)
        }
    }

    /// y[M, N] = x[M, K] · W[N, K]ᵀ as sgemm calls of the fixed shape [R, 64, K]
    /// (R = decodeTileRows) over W's transposed tiles, so a row's bits depend on its own values only.
    /// `x` and `y` hold M rounded up to a multiple of R rows; the padding rows of x are zeroed, those
    /// of y overwritten. `then` runs on each column tile right after it is computed, by the same worker.
    private func tiledLinear(y: FloatPtr, x: FloatPtr, w: TiledMatrix, rows m: Int, then: Epilogue = .none) {
        guard m > 0 else { return }
        let R = decodeTileRows
        let mp = (m + R - 1) / R * R
        if mp > m { (x + m * w.cols).update(repeating: 0, count: (mp - m) * w.cols) }
        parallel(.linear(y: y, x: x, w: w, rows: mp, then: then))
    }

    /// act = SwiGLU(h · W_gate,upᵀ) for rows 0..<m: column tile j of the gate matrix and the same
    /// tile of the up matrix are computed by one worker, which then applies SwiGLU to those columns.
    private func gateUp(layer l: Int, rows m: Int) {
        let C = model.config.hiddenSize, R = decodeTileRows
        let mp = (m + R - 1) / R * R
        if mp > m { (h + m * C).update(repeating: 0, count: (mp - m) * C) }
        parallel(.gateUp(layer: l, rows: m))
    }

    /// Gate/up tile pairs of task t of `jobTasks` (see `gateUp`).
    private func gateUpTask(_ t: Int, layer l: Int, rows m: Int) {
        let F = model.config.intermediateSize, R = decodeTileRows, mp = (m + R - 1) / R * R
        let gate = weights.gate[l], up = weights.up[l]
        let tiles = gate.tiles, tasks = jobTasks
        for tile in (tiles * t / tasks)..<(tiles * (t + 1) / tasks) {
            let f0 = tile * decodeTileColumns
            productTile(y: gu + f0, ldy: 2 * F, x: h, w: gate, tile: tile, rows: mp)
            productTile(y: gu + F + f0, ldy: 2 * F, x: h, w: up, tile: tile, rows: mp)
            let width = gate.tile(tile).width
            for i in 0..<m { swigluRow(h: act + i * F, gu: gu + i * 2 * F, hidden: F, columns: f0..<(f0 + width)) }
        }
    }

    /// Column tiles of task t of `jobTasks`; each worker loops over the row groups with its weight
    /// tile in cache, and always gets the same tiles of a product.
    private func linearTask(_ t: Int, y: FloatPtr, x: FloatPtr, w: TiledMatrix, rows mp: Int, then: Epilogue) {
        let n = w.rows, tiles = w.tiles, tasks = jobTasks
        for tile in (tiles * t / tasks)..<(tiles * (t + 1) / tasks) {
            let n0 = tile * decodeTileColumns
            productTile(y: y + n0, ldy: n, x: x, w: w, tile: tile, rows: mp)
            switch then {
            case .none: break
            case let .addTo(res, rows):
                let width = w.tile(tile).width
                for i in 0..<rows { vadd(res + i * n + n0, y + i * n + n0, width) }
            }
        }
    }

    /// y[i, 0..<width] (row stride ldy) = x[i, K] · tile for rows 0..<mp, one [R, width, K] call per
    /// group of R rows. The first call streams the tile from memory, the others read it from cache.
    @inline(__always) private func productTile(y: FloatPtr, ldy: Int, x: FloatPtr, w: TiledMatrix, tile: Int,
                                               rows mp: Int) {
        let R = decodeTileRows, k = w.cols, (b, width) = w.tile(tile)
        var r = 0
        while r < mp {
            sgemm(.none, .none, m: R, n: width, k: k, a: x + r * k, lda: k, b: b, ldb: width, c: y + r * ldy, ldc: ldy)
            r += R
        }
    }

    /// Runs `j` on every team member (the calling thread is member 0).
    private func parallel(_ j: Job) {
        let size = max(1, min(Threads.count, scoreTasks))
        if team?.size != size {
            team = nil
            team = DecodeTeam(size: size) { [unowned(unsafe) self] t in self.perform(t) }
        }
        job = j
        jobTasks = size
        team!.run()
        job = .none
    }

    /// Member t's part of the current job.
    private func perform(_ t: Int) {
        switch job {
        case .none: break
        case let .linear(y, x, w, rows, then):
            linearTask(t, y: y, x: x, w: w, rows: rows, then: then)
        case let .gateUp(layer, rows):
            gateUpTask(t, layer: layer, rows: rows)
        case let .attend(layer, rows):
            attendTask(t, layer: layer, rows: rows)
        case let .ropeStore(layer, rows):
            ropeStoreTask(t, layer: layer, rows: rows)
        case let .norm(y, x, w, rows):
            rmsnormRows(y: y, rstd: rstd, x: x, w: w, rows: (rows * t / jobTasks)..<(rows * (t + 1) / jobTasks),
                        channels: model.config.hiddenSize, eps: model.config.rmsNormEps)
        }
    }
}

/// A parallel region of the decoder: plain values, so workers read it without reference counting.
private enum Job {
    case none
    case linear(y: FloatPtr, x: FloatPtr, w: TiledMatrix, rows: Int, then: Epilogue)
    case gateUp(layer: Int, rows: Int)
    case attend(layer: Int, rows: Int)
    case ropeStore(layer: Int, rows: Int)
    /// y = RMSNorm(x) · w for rows 0..<rows.
    case norm(y: FloatPtr, x: FloatPtr, w: ConstFloatPtr, rows: Int)
}

/// Work a worker does on a column tile of a product right after computing it (rows 0..<rows).
private enum Epilogue {
    case none
    /// res[i, tile] += y[i, tile] (the residual connection).
    case addTo(FloatPtr, rows: Int)
}

// MARK: - Worker team

#if canImport(Synchronization) && os(Linux)
import Foundation
import Synchronization

/// Persistent workers for the decoder's parallel regions. A decode step runs about five regions
/// per layer of a few tens of microseconds each. Dispatch's `concurrentPerform` wakes a worker for
/// every region (~35–40 µs measured here) and runs task i on whichever thread comes first, so a
/// core does not keep the same weight tiles in cache from step to step. Team workers spin between
/// regions (yielding the CPU; they park after 1 ms without work) and member t always runs task t.
/// How the work is split never changes a row's bits (see the file header).
final class DecodeTeam: @unchecked Sendable {
    /// Members, the calling thread included.
    let size: Int
    private let core: TeamCore

    /// Starts `size − 1` workers; `perform(t)` is member t's part of the current region.
    init(size: Int, perform: @escaping (Int) -> Void) {
        self.size = max(1, size)
        core = TeamCore(perform: perform)
        for t in 1..<self.size {
            let core = core
            let thread = Thread { core.work(t) }
            thread.name = "rondo-decode-\(t)"
            thread.start()
        }
    }

    deinit { core.stop(workers: size - 1) }

    /// Runs perform(t) for every member t (0 on the caller); returns when all are done.
    func run() {
        guard size > 1 else { return core.perform(0) }
        core.run(workers: size - 1)
    }
}

/// What the workers share with the caller (apart from the team, so workers do not retain it).
private final class TeamCore: @unchecked Sendable {
    let perform: (Int) -> Void
    private let epoch = Atomic<Int>(0)     // bumped once per region, and on stop
    private let finished = Atomic<Int>(0)  // workers done with the current region
    private let parked = Atomic<Int>(0)    // workers blocked on `wake`
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)

    init(perform: @escaping (Int) -> Void) { self.perform = perform }

    func run(workers: Int) {
        finished.store(0, ordering: .relaxed)
        epoch.wrappingAdd(1, ordering: .sequentiallyConsistent)  // publishes the caller's job
        let sleeping = parked.load(ordering: .sequentiallyConsistent)
        for _ in 0..<sleeping { wake.signal() }
        perform(0)
        var spins = 0
        while finished.load(ordering: .acquiring) < workers {
            spins += 1
            if spins > 64 { sched_yield() }
        }
    }

    func stop(workers: Int) {
        stopping.store(true, ordering: .sequentiallyConsistent)
        epoch.wrappingAdd(1, ordering: .sequentiallyConsistent)
        for _ in 0..<workers { wake.signal() }
    }

    /// Member t's loop. It starts from epoch 0, the value before any region: a worker that starts
    /// late must still take part in the regions already published.
    func work(_ t: Int) {
        var seen = 0
        while true {
            var spins = 0
            var idleSince = DispatchTime.now().uptimeNanoseconds
            while epoch.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < 256 { continue }
                sched_yield()
                if spins & 255 == 0, DispatchTime.now().uptimeNanoseconds - idleSince > 1_000_000 {
                    // Park until the next region; the caller signals once per parked worker (a stale
                    // signal only makes a later wait return early, and the loop re-checks).
                    parked.wrappingAdd(1, ordering: .sequentiallyConsistent)
                    if epoch.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                    parked.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                    idleSince = DispatchTime.now().uptimeNanoseconds
                }
            }
            seen += 1  // regions run one at a time: the caller waits for every worker before the next
            if stopping.load(ordering: .acquiring) { return }
            perform(t)
            finished.wrappingAdd(1, ordering: .releasing)
        }
    }
}
#else
/// Where the Synchronization module is unavailable: one Dispatch region per call.
final class DecodeTeam: @unchecked Sendable {
    let size: Int
    private let perform: (Int) -> Void
    init(size: Int, perform: @escaping (Int) -> Void) { self.size = max(1, size); self.perform = perform }
    func run() { parallelFor(size, perform) }
}
#endif
