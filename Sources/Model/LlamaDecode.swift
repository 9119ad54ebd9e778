// Incremental decoding of a `LlamaModel` with a KV cache: the forward pass of the sampler.
//
// Port of the cached path of transformers' `LlamaForCausalLM.forward` (modeling_llama.py with
// a `DynamicCache`, cache_utils.py): each new token is embedded, runs through every layer with
// its query attending to the cached (post-RoPE) keys and values of its own sequence, and the
// LM head gives the logits of the next token.
//
// Dimension letters as in Workspace.swift, plus S cache slots (sequences in flight), Lmax
// positions per slot, R token rows in one call (the packed tokens of all slots, no padding).
// The cache (KVCache.swift) holds keys and values [S, NKV, Lmax, D] per layer.
//
// One path for prefill and decode. A call appends token rows to cache slots: prefill a whole
// prompt per slot (all its rows in one pass through the layers, chunks of `maxTokensPerCall`),
// a decode step one row per slot. Both run through `run` and the same kernels, and a row's bits
// depend only on its own values (below), so a prompt prefilled at once gives the same bits as
// the same tokens decoded one at a time (SamplingTests' ReproducibilityTests check it).
//
// Batch-size and thread-count independence. A token row's result must not depend on which other
// rows share the call (batch size, refill order) nor on the thread count, so that a sample is a
// function of (model, prompt, seed) only. OpenBLAS does not give that (a row of a product changes
// in the last bits with M, whose value picks its kernels, and with the thread count, which splits
// K differently). So every product with a weight matrix (qkv, o, gate/up, down, LM head) runs
// through our own micro-kernels (Sources/CKernels, Kernels' `DecodeKernel`): each output is one
// fixed chain of fused multiply-adds over k from 0, acc = fma(x[r, k], w[k, n], acc), whatever the
// number of rows, their register blocking, the SIMD width, the thread or the instruction-set
// variant (AVX-512, AVX2+FMA, portable fmaf: an FMA is exactly rounded, so all give the same bits;
// KernelsTests check each against a plain loop and each other). No padding rows are needed.
//   The weights are read from a copy made when the decoder is created (`DecodeWeights`), each
// matrix cut into 32-column tiles stored transposed as contiguous 16-column strips. A product's
// tiles are shared out among the members of the decoder's team (`WorkSplit`: each member takes its
// own contiguous range in order, then helps with the back of the others'), and a member runs the
// call's rows through the kernel (register blocks of up to 12 rows × 32 columns with AVX-512,
// 6 × 16 with AVX2): a decode step streams every weight once,
// prefill reuses each tile over all prompt rows (cut into chunks of 96 rows, so that the work
// splits evenly when a matrix has few tiles). Elementwise work that needs only a tile's own
// columns runs in the product's region, by the worker that computed the tile: the residual add
// after o_proj and down_proj (the kernel adds into the residual stream, the same single rounding
// as adding a stored product) and SwiGLU (the gate and up halves of a tile pair go to the same
// worker).
//   Overlapping memory and arithmetic. A block of rows reads a strip front to back, one cache
// line per k, and requests the line 4 KB ahead into L2 (Sources/CKernels/tile_product.c), so the
// memory system runs ahead of the arithmetic instead of alternating with it. At SmolLM2-135M's
// shape and batch 16 (538 MB per step) this took the step's products from 42 to 26 ms in a gcc-built C
// harness, and with the attention kernels below a `rondo bench sample` step from 41–42 to 35–38 ms
// (Intel Xeon, AVX-512, 2 threads; README "Sampling"); the previous layout (64-column tiles, each k a 256-byte row, blocks of 6 rows
// × 64 columns re-reading the tile from cache, and the next tile prefetched into L2 spread over
// the call) left memory and arithmetic mostly alternating. 32-column tiles also split the
// 576-wide products (o_proj, down_proj: 18 tiles) evenly over two workers.
//   History: the previous design chained single-threaded OpenBLAS sgemm calls of one fixed shape
// [4, 64, K] (rows zero-padded to a multiple of 4) — about 8,000 small calls per step at
// SmolLM2-135M's shape, dominated by call overhead at batch 16 and in prefill.
//   Threads: a step has ~5 parallel regions per layer of tens of microseconds, so the decoder
// runs them on its own persistent team (`DecodeTeam`, spinning between regions) instead of
// Dispatch, which costs ~35–40 µs per region here and moves tasks between cores.
//   Attention runs per (row, kv head) through our own kernels (Sources/CKernels/attention.c): each
// score one fixed chain over the head dimension, each output one over the row's positions, so
// its bits depend only on the row's own query, keys and values. It used to be two small OpenBLAS
// calls per (row, kv head), whose fixed cost was about 15% of a SmolLM2-135M batch-16 step.
// RMSNorm, RoPE and SwiGLU are per row with fixed summation orders. Keys are cached in blocks of
// 16 positions, dimension-major (KVCache.swift); RoPE and the cache store run on the team.

import Foundation
import Kernels


/// Output columns of a weight tile (`DecodeWeights`): the unit of work of a decode product.
public let decodeTileColumns = 32
/// Most rows of a product's work unit (a prefill's rows are cut into chunks of this many).
private let unitRows = 96

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
    /// The micro-kernel variant of the products (all variants give the same bits).
    public let kernel: DecodeKernel
    /// Keys and values of the sequences in flight.
    public let cache: KVCache
    /// Most token rows one forward pass processes (prefill runs in chunks of this many).
    public let maxTokensPerCall: Int

    private let capacity: Int       // R: rows of every per-token scratch buffer
    private let arena: FloatArena
    private let x: FloatPtr         // [R, C] residual stream
    private let h: FloatPtr         // [R, C] normed input of a projection
    private let qkv: FloatPtr       // [R, QKV]
    private let att: FloatPtr       // [R, A]
    private let gu: FloatPtr        // [R, 2F]
    private let act: FloatPtr       // [R, F]
    private let rstd: FloatPtr      // [R]
    private let headIn: FloatPtr    // [S, C] last-token rows
    private let headNorm: FloatPtr  // [S, C] their final norm
    private let logits: FloatPtr    // [S, V]
    private let ropeCos: FloatPtr   // [Lmax, D/2] RoPE tables (model.rope's first Lmax positions)
    private let ropeSin: FloatPtr   // [Lmax, D/2]
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
    private var job = DecodeJob.none      // the parallel region being run (read by the team's workers)
    private var jobTasks = 1
    private var split = WorkSplit(members: 1)  // the current region's units (linear, gateUp, attend)

    /// Allocates a cache of `slots` sequences × `maxLen` positions and the scratch for calls of up
    /// to `maxTokensPerCall` tokens (default max(slots, 512)). `weights` is the model's tiled copy;
    /// by default the decoder makes its own, of the parameters as they are now. `kernel` is the
    /// products' instruction-set variant (default: RONDO_KERNEL's or the best this CPU runs).
    public init(model: LlamaModel, slots: Int, maxLen: Int, maxTokensPerCall: Int? = nil,
                weights: DecodeWeights? = nil, kernel: DecodeKernel = .selected) throws {
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
        self.model = model
        self.kernel = kernel
        self.weights = weights ?? DecodeWeights(model: model)
        self.cache = KVCache(config: c, slots: slots, maxLen: maxLen)
        self.maxTokensPerCall = tokens
        capacity = tokens
        let R = capacity, S = slots
        let half = c.headDim / 2
        let sizes = [R * C, R * C, R * QKV, R * A, R * 2 * F, R * F, R, S * C, S * C, S * V,
                     maxLen * half, maxLen * half]
        let memory = FloatArena(sizes: sizes)
        arena = memory
        var k = 0
        func take() -> FloatPtr { defer { k += 1 }; return memory.blocks[k] }
        x = take(); h = take(); qkv = take(); att = take(); gu = take(); act = take()
        rstd = take(); headIn = take(); headNorm = take(); logits = take(); ropeCos = take(); ropeSin = take()
        ropeCos.update(from: model.rope.cos, count: maxLen * half)
        ropeSin.update(from: model.rope.sin, count: maxLen * half)
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
        split.deallocate()
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
        run(rows: n, heads: n, logitsRow: 0, ownSlots: true)
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
    /// rows headRow[0..<heads], written to logits rows logitsRow..<(logitsRow + heads). With
    /// `ownSlots` (a decode step: each row the only one of its slot) RoPE and the cache store run
    /// inside the attention units, one parallel region fewer per layer.
    private func run(rows n: Int, heads: Int, logitsRow: Int, ownSlots: Bool = false) {
        let c = model.config, w = weights
        let C = c.hiddenSize, V = c.vocabSize
        if Threads.count > scoreTasks {  // the thread count grew since init: one-off reallocation
            scores.deallocate()
            scoreTasks = Threads.count
            scores = .allocate(capacity: scoreTasks * scoreRows)
            scores.initialize(repeating: 0, count: scoreTasks * scoreRows)
        }
        do {
            let emb = w.embed
            for i in 0..<n { (x + i * C).update(from: emb + Int(tokID[i]) * C, count: C) }
            for l in 0..<c.numLayers {
                parallel(.norm(y: h, x: x, w: w.inputNorm[l], rows: n))
                linear(y: qkv, x: h, w: w.qkv[l], rows: n)
                if !ownSlots { parallel(.ropeStore(layer: l, rows: n)) }
                attend(layer: l, rows: n, rope: ownSlots)
                linear(y: x, x: att, w: w.o[l], rows: n, accumulate: true)
                parallel(.norm(y: h, x: x, w: w.postNorm[l], rows: n))
                gateUp(layer: l, rows: n)
                linear(y: x, x: act, w: w.down[l], rows: n, accumulate: true)
            }
            for i in 0..<n { cache.lengths[tokSlot[i]] = max(cache.lengths[tokSlot[i]], tokPos[i] + 1) }
            guard heads > 0 else { return }
            for r in 0..<heads { (headIn + r * C).update(from: x + headRow[r] * C, count: C) }
            rmsnormForward(y: headNorm, rstd: rstd, x: headIn, w: w.finalNorm, rows: heads, channels: C,
                           eps: c.rmsNormEps)
            linear(y: logits + logitsRow * V, x: headNorm, w: w.head, rows: heads)
        }
    }

    /// Rows of task t of `jobTasks`: RoPE on their query and key heads, each at its own position
    /// (same arithmetic as `ropeApply`), then their keys and values copied into their slots' cache
    /// positions. (Decode steps do this inside their attention units instead: see `attend`.)
    private func ropeStoreTask(_ t: Int, layer l: Int, rows n: Int) {
        let c = model.config
        for i in (n * t / jobTasks)..<(n * (t + 1) / jobTasks) {
            rope(row: i, heads: 0..<(c.numHeads + c.numKVHeads))
            for g in 0..<c.numKVHeads { storeKV(row: i, layer: l, kvHead: g) }
        }
    }

    /// RoPE on heads `heads` of row i's qkv (query heads, then key heads) at the row's position.
    @inline(__always) private func rope(row i: Int, heads: Range<Int>) {
        let d = model.config.headDim, half = d / 2
        let p = tokPos[i], row = qkv + i * model.config.qkvWidth
        let cr = ropeCos + p * half, sr = ropeSin + p * half
        for j in heads {
            let v = row + j * d
            for e in 0..<half {
                let a = v[e], b = v[e + half], s = sr[e]
                v[e] = a * cr[e] - b * s
                v[e + half] = b * cr[e] + a * s
            }
        }
    }

    /// Copies row i's key (after RoPE) and value of kv head g into its slot's cache position.
    @inline(__always) private func storeKV(row i: Int, layer l: Int, kvHead g: Int) {
        let c = model.config, d = c.headDim, NH = c.numHeads, NKV = c.numKVHeads
        let p = tokPos[i], s = tokSlot[i], row = qkv + i * c.qkvWidth
        let kb = cache.keyBase(l, s, g), key = row + (NH + g) * d
        for e in 0..<d { kb[cache.keyOffset(position: p, dimension: e)] = key[e] }
        (cache.valueBase(l, s, g) + p * d).update(from: row + (NH + NKV + g) * d, count: d)
    }

    /// att[i, head h] = softmax(q·Kᵀ/√D) · V over positions 0...tokPos[i] of row i's slot, one
    /// (row, kv head) unit at a time: the query heads sharing a kv head go through its keys and
    /// values together. Units are shared out over the team by `split` (rows differ in length).
    /// With `rope` (rows in distinct slots), a unit first applies RoPE to its query and key heads
    /// and stores its key and value: no unit reads another's.
    private func attend(layer l: Int, rows n: Int, rope: Bool) {
        parallel(.attend(layer: l, rows: n, rope: rope))
    }

    /// Attention units member t takes from `split` (see `attend`).
    private func attendTask(_ t: Int, layer l: Int, rows n: Int, rope ropeFirst: Bool) {
        let c = model.config, d = c.headDim, QKV = c.qkvWidth, A = c.attentionWidth
        let NH = c.numHeads, NKV = c.numKVHeads, group = c.numHeads / c.numKVHeads
        let scale = 1 / Float(d).squareRoot()
        let lmax = cache.maxLen
        let sc = scores + t * group * lmax  // [group, Lmax]
        while let unit = split.next(member: t) {
            let i = unit / NKV, g = unit % NKV
            if ropeFirst {
                rope(row: i, heads: (g * group)..<((g + 1) * group))
                rope(row: i, heads: (NH + g)..<(NH + g + 1))
                storeKV(row: i, layer: l, kvHead: g)
            }
            let len = tokPos[i] + 1, s = tokSlot[i]
            let q = qkv + i * QKV + g * group * d  // the group's query heads, adjacent
            let kb = cache.keyBase(l, s, g), vb = cache.valueBase(l, s, g)
            // sc[group, len] = scale · Q[group, D] · K[len, D]ᵀ; softmax per head; out = P · V. Each
            // output is one fixed chain over the row's own values (Sources/CKernels/attention.c).
            // The values, and then the next unit's keys (most likely this member's), are prefetched.
            kernel.attentionScores(heads: group, d: d, len: len, q: q, keys: kb, scale: scale, scores: sc, lds: lmax,
                                   values: vb)
            for h in 0..<group {
                let sh = sc + h * lmax
                let m = vmax(sh, len)
                let z = vexpShifted(sh, sh, m, len)
                vscale(sh, 1 / z, len)
            }
            let next = unit + 1 < n * NKV ? cache.keyBase(l, tokSlot[(unit + 1) / NKV], (unit + 1) % NKV) : nil
            kernel.attentionValues(heads: group, d: d, len: len, p: sc, ldp: lmax, values: vb,
                                   out: att + i * A + g * group * d, then: next)
        }
    }

    /// y[M, N] = x[M, K] · W[N, K]ᵀ (with `accumulate`, y += it: the residual connection) over W's
    /// transposed column tiles, each output one fixed FMA chain (see the file header).
    private func linear(y: FloatPtr, x: ConstFloatPtr, w: TiledMatrix, rows m: Int, accumulate: Bool = false) {
        guard m > 0 else { return }
        parallel(.linear(y: y, x: x, w: w, rows: m, accumulate: accumulate))
    }

    /// Units member t takes (`forEachUnit`); each worker runs all its rows through a tile with the
    /// tile in cache.
    private func linearTask(_ t: Int, y: FloatPtr, x: ConstFloatPtr, w: TiledMatrix, rows m: Int, accumulate: Bool) {
        forEachUnit(t, w: w, rows: m) { tile, rows, next in
            productTile(y: y + tile * decodeTileColumns, ldy: w.rows, x: x, w: w, tile: tile, rows: rows,
                        accumulate: accumulate, next: w.hint(next))
        }
    }

    /// act = SwiGLU(h · W_gate,upᵀ) for rows 0..<m: column tile j of the gate matrix and the same
    /// tile of the up matrix are computed by one worker, which then applies SwiGLU to those columns.
    private func gateUp(layer l: Int, rows m: Int) {
        parallel(.gateUp(layer: l, rows: m))
    }

    /// Gate/up tile pairs member t takes (see `gateUp`).
    private func gateUpTask(_ t: Int, layer l: Int, rows m: Int) {
        let F = model.config.intermediateSize
        let gate = weights.gate[l], up = weights.up[l]
        forEachUnit(t, w: gate, rows: m) { tile, rows, next in
            let f0 = tile * decodeTileColumns
            productTile(y: gu + f0, ldy: 2 * F, x: h, w: gate, tile: tile, rows: rows, next: up.hint(tile))
            productTile(y: gu + F + f0, ldy: 2 * F, x: h, w: up, tile: tile, rows: rows, next: gate.hint(next))
            let width = gate.tile(tile).width
            for i in rows { swigluRow(h: act + i * F, gu: gu + i * 2 * F, hidden: F, columns: f0..<(f0 + width)) }
        }
    }

    /// Calls `body(tile, rows, next)` for the work units member t takes over w's tiles (`next`: the
    /// tile of the unit after it, which the member most likely takes next). A unit is a column
    /// tile and a chunk of at most `unitRows` rows; units are numbered tile-major and shared out by
    /// `split` from contiguous ranges, so a worker's chunks of one tile are consecutive (the tile
    /// stays in its cache), its tiles are contiguous in memory (one stream), and a prefill's rows
    /// spread evenly over the workers even when a matrix has few tiles. Which worker computes a
    /// unit never changes its bits.
    @inline(__always) private func forEachUnit(_ t: Int, w: TiledMatrix, rows m: Int,
                                               _ body: (Int, Range<Int>, Int) -> Void) {
        let chunks = rowChunks(m)
        while let u = split.next(member: t) {
            let tile = u / chunks, c = u % chunks
            body(tile, (c * unitRows)..<min(m, (c + 1) * unitRows), (u + 1) / chunks)
        }
    }

    /// Chunks of at most `unitRows` rows that m rows make (at least one).
    private func rowChunks(_ m: Int) -> Int { max(1, (m + unitRows - 1) / unitRows) }

    /// Units of a region whose work `split` shares out; 0 for the others (split statically).
    private func units(of j: DecodeJob) -> Int {
        switch j {
        case let .linear(_, _, w, rows, _): return w.tiles * rowChunks(rows)
        case let .gateUp(layer, rows): return weights.gate[layer].tiles * rowChunks(rows)
        case let .attend(_, rows, _): return rows * model.config.numKVHeads
        case .none, .ropeStore, .norm: return 0
        }
    }

    /// y[i, 0..<width] (row stride ldy; with `accumulate`, +=) = x[i, K] · tile for i in `rows`;
    /// `next` steers the prefetch past the tile's end.
    @inline(__always) private func productTile(y: FloatPtr, ldy: Int, x: ConstFloatPtr, w: TiledMatrix, tile: Int,
                                               rows: Range<Int>, accumulate: Bool = false, next: TileHint?) {
        let k = w.cols, (b, width) = w.tile(tile)
        kernel.tileProduct(rows: rows.count, k: k, width: width, x: x + rows.lowerBound * k, ldx: k, w: b,
                           y: y + rows.lowerBound * ldy, ldy: ldy, accumulate: accumulate, next: next)
    }

    /// Runs `j` on every team member (the calling thread is member 0).
    private func parallel(_ j: DecodeJob) {
        let size = max(1, min(Threads.count, scoreTasks))
        if team?.size != size {
            team = nil
            team = DecodeTeam(size: size) { [unowned(unsafe) self] t in self.perform(t) }
            split.deallocate()
            split = WorkSplit(members: size)
        }
        job = j
        jobTasks = size
        split.reset(units: units(of: j))
        team!.run()
        job = .none
    }

    /// Member t's part of the current job.
    private func perform(_ t: Int) {
        switch job {
        case .none: break
        case let .linear(y, x, w, rows, accumulate):
            linearTask(t, y: y, x: x, w: w, rows: rows, accumulate: accumulate)
        case let .gateUp(layer, rows):
            gateUpTask(t, layer: layer, rows: rows)
        case let .attend(layer, rows, rope):
            attendTask(t, layer: layer, rows: rows, rope: rope)
        case let .ropeStore(layer, rows):
            ropeStoreTask(t, layer: layer, rows: rows)
        case let .norm(y, x, w, rows):
            rmsnormRows(y: y, rstd: rstd, x: x, w: w, rows: (rows * t / jobTasks)..<(rows * (t + 1) / jobTasks),
                        channels: model.config.hiddenSize, eps: model.config.rmsNormEps)
        }
    }
}
