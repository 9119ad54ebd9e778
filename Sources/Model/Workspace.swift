// Activation and scratch memory for one model, allocated once for a maximum (B, T).
//
// Dimension letters: B batch, T sequence, N = B·T rows, C hidden, A = NH·D attention width,
// QKV = (NH + 2·NKV)·D, F intermediate, V vocabulary, L layers.
// Everything the backward pass needs is kept per layer; a step allocates nothing.

import Kernels
#if canImport(Glibc)
import Glibc
#endif

/// Preallocated activations for forward + backward of batches up to `maxBatch × maxSeqLen`.
public final class LlamaWorkspace: @unchecked Sendable {
    public let maxBatch: Int
    public let maxSeqLen: Int
    public var maxRows: Int { maxBatch * maxSeqLen }
    /// Rows of logits computed per sgemm chunk of the LM head.
    public let logitChunkRows: Int

    private let arena: FloatArena

    // Per layer l (arrays of L pointers), and the residual stream resid[0...L].
    let resid: [FloatPtr]      // [N, C] input of layer l; resid[L] is the trunk output
    let norm1: [FloatPtr]      // [N, C]
    let rstd1: [FloatPtr]      // [N]
    let qkv: [FloatPtr]        // [N, QKV] (q and k after RoPE)
    let probs: [FloatPtr]      // [B, NH, T, T]
    let attn: [FloatPtr]       // [N, A] attention output before o_proj
    let mid: [FloatPtr]        // [N, C] residual after attention
    let norm2: [FloatPtr]      // [N, C]
    let rstd2: [FloatPtr]      // [N]
    let gateUp: [FloatPtr]     // [N, 2F]
    let act: [FloatPtr]        // [N, F]
    let normF: FloatPtr        // [N, C] final norm output
    let rstdF: FloatPtr        // [N]

    // Head (LM: gathered rows of scored positions).
    let sel: UnsafeMutablePointer<Int>      // [N] row index of each scored position's predictor
    let target: UnsafeMutablePointer<Int32> // [N]
    var selCount = 0
    var logitsCached = false
    let hsel: FloatPtr     // [N, C]
    let logits: FloatPtr   // [chunk, V]
    let lse: FloatPtr      // [N]
    let logpSel: FloatPtr  // [N]
    /// Per-position output of the last forward: log-probabilities (LM) or scores (score head), [N].
    public let output: FloatPtr
    /// How the LM head turns logits into log-probabilities; read by `forward` and the `backward`
    /// that follows it (change it only between a backward and the next forward).
    public var head = LMHeadOptions()
    let entropySel: FloatPtr  // [N]
    /// Per-position entropies of the last forward when `head.entropies` is set (at the same
    /// positions as `output`'s log-probabilities, 0 elsewhere), [N].
    public let entropy: FloatPtr

    // Backward scratch.
    let dresid: FloatPtr   // [N, C]
    let dnorm: FloatPtr    // [N, C]
    let dtmp: FloatPtr     // [N, max(C, A)] (also the forward's projection output before the residual add)
    let dqkv: FloatPtr     // [N, QKV]
    let dgateUp: FloatPtr  // [N, 2F]
    let dact: FloatPtr     // [N, F]
    let dhsel: FloatPtr    // [N, C]
    let attnScratch: FloatPtr  // [NH, T, T]
    let normScratch: FloatPtr  // [8, max(C)]
    let normScratchParts = 8

    /// Allocates for batches of at most `maxBatch` rows of `maxSeqLen` tokens.
    /// `logitBudget` bounds the LM-head chunk (floats); when all scored rows fit, the backward pass
    /// reuses the forward's logits instead of recomputing them.
    public init(config c: LlamaConfig, maxBatch: Int, maxSeqLen: Int, logitBudget: Int = 64 << 20) {
        self.maxBatch = maxBatch
        self.maxSeqLen = maxSeqLen
        let n = maxBatch * maxSeqLen
        let C = c.hiddenSize, A = c.attentionWidth, F = c.intermediateSize, L = c.numLayers
        let QKV = c.qkvWidth, V = c.head == .causalLM ? c.vocabSize : 1
        let P = maxBatch * c.numHeads * maxSeqLen * maxSeqLen
        logitChunkRows = max(1, min(n, logitBudget / max(1, V)))
        var sizes: [Int] = []
        sizes += Array(repeating: n * C, count: L + 1)                       // resid
        for _ in 0..<L { sizes += [n * C, n, n * QKV, P, n * A, n * C, n * C, n, n * 2 * F, n * F] }
        sizes += [n * C, n]                                                   // normF, rstdF
        sizes += [n * C, logitChunkRows * V, n, n, n]                          // hsel, logits, lse, logpSel, output
        sizes += [n * C, n * C, n * max(C, A), n * QKV, n * 2 * F, n * F, n * C]  // backward
        sizes += [c.numHeads * maxSeqLen * maxSeqLen, normScratchParts * max(C, 16)]
        sizes += [n, n]                                                       // entropySel, entropy
        let memory = FloatArena(sizes: sizes)
        arena = memory
        var k = 0
        func take() -> FloatPtr { defer { k += 1 }; return memory.blocks[k] }
        resid = (0...L).map { _ in take() }
        var n1: [FloatPtr] = [], r1: [FloatPtr] = [], q: [FloatPtr] = [], pr: [FloatPtr] = [], at: [FloatPtr] = []
        var md: [FloatPtr] = [], n2: [FloatPtr] = [], r2: [FloatPtr] = [], gu: [FloatPtr] = [], ac: [FloatPtr] = []
        for _ in 0..<L {
            n1.append(take()); r1.append(take()); q.append(take()); pr.append(take()); at.append(take())
            md.append(take()); n2.append(take()); r2.append(take()); gu.append(take()); ac.append(take())
        }
        norm1 = n1; rstd1 = r1; qkv = q; probs = pr; attn = at; mid = md; norm2 = n2; rstd2 = r2; gateUp = gu; act = ac
        normF = take(); rstdF = take()
        hsel = take(); logits = take(); lse = take(); logpSel = take(); output = take()
        dresid = take(); dnorm = take(); dtmp = take(); dqkv = take(); dgateUp = take(); dact = take(); dhsel = take()
        attnScratch = take(); normScratch = take()
        entropySel = take(); entropy = take()
        sel = .allocate(capacity: n)
        target = .allocate(capacity: n)
    }

    deinit {
        sel.deallocate()
        target.deallocate()
    }

    /// Bytes held by this workspace.
    public var byteCount: Int { arena.count * 4 + maxRows * 12 }
}

/// Options of the LM head (TRL's fused log-prob head, `trl/trainer/utils.py` lines 1548–1698).
public struct LMHeadOptions: Sendable, Equatable {
    /// Sampling temperature T: log-probabilities (and entropies) are of softmax(logits · (1/T)), the
    /// logits scaled in float32 as TRL does; the backward scales d logits by 1/T. T = 1 leaves the
    /// computation untouched (no multiply).
    public var temperature: Double = 1
    /// Also compute the entropy −Σ_v p_v log p_v at every scored position (into `LlamaWorkspace.entropy`).
    public var entropies = false

    public init(temperature: Double = 1, entropies: Bool = false) {
        self.temperature = temperature; self.entropies = entropies
    }

    /// 1/T as a float32, the factor TRL multiplies the logits by.
    var inverseTemperature: Float { temperature == 1 ? 1 : Float(1 / temperature) }
}

/// One zeroed allocation carved into float blocks of the given sizes, in order, each starting on a
/// 64-byte boundary; freed with the arena. An arena of 4 MiB or more starts on a 2 MiB boundary and
/// asks the kernel for transparent huge pages before its memory is first touched: the decoder
/// streams its weights and KV cache through the arena once per token, and with 4 KiB pages every
/// 4 KiB of that stream is a TLB miss.
final class FloatArena {
    /// Floats allocated (the sizes rounded up to multiples of 16).
    let count: Int
    let blocks: [FloatPtr]
    private let base: FloatPtr

    init(sizes: [Int]) {
        let rounded = sizes.map { ($0 + 15) & ~15 }
        count = rounded.reduce(0, +)
        let bytes = max(1, count) * 4, huge = 2 << 20
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: bytes >= 2 * huge ? huge : 64)
        #if os(Linux)
        if bytes >= 2 * huge { _ = madvise(raw, bytes, MADV_HUGEPAGE) }  // advice only: no error to handle
        #endif
        base = raw.bindMemory(to: Float.self, capacity: max(1, count))
        base.initialize(repeating: 0, count: count)
        var next = base
        blocks = rounded.map { n in defer { next += n }; return next }
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }
}
