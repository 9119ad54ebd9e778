// The HF Llama architecture, forward and backward, on one flat parameter buffer.
//
// Port of transformers' `models/llama/modeling_llama.py` (LlamaModel, LlamaForCausalLM,
// LlamaForSequenceClassification; eager attention): embedding → L × [RMSNorm → q/k/v → RoPE
// (rotate-half) → causal GQA softmax attention → o_proj → residual → RMSNorm → SwiGLU MLP →
// residual] → RMSNorm → LM head (log-probabilities of target tokens) or score head.
//
// Dimension letters as in Workspace.swift. Batches are right-padded [B, T]; with a causal mask
// real positions never see the padding, so pad positions are computed but never read.
// Every projection is one sgemm: q/k/v are stacked [QKV, C] and gate/up [2F, C] in the buffer.

import Kernels

/// Right-padded token rows and which target tokens to score.
public struct TokenBatch: Sendable {
    public var batch: Int
    public var seqLen: Int
    /// [B·T] token ids; positions ≥ lengths[b] hold any valid id (usually the pad id).
    public var tokens: [Int32]
    /// Real tokens per row.
    public var lengths: [Int]
    /// First target position scored in each row (≥ 1): the LM head returns log p(x[b, j] | x[b, <j])
    /// for j in scoreFrom[b]..<lengths[b]. Ignored by the score head.
    public var scoreFrom: [Int]

    public init(batch: Int, seqLen: Int, tokens: [Int32], lengths: [Int], scoreFrom: [Int]) {
        self.batch = batch; self.seqLen = seqLen; self.tokens = tokens; self.lengths = lengths; self.scoreFrom = scoreFrom
    }

    /// Builds a right-padded batch from rows of ids; `scoreFrom[b]` defaults to 1 (score every next token).
    public init(rows: [[Int32]], pad: Int32, scoreFrom: [Int]? = nil) {
        let t = rows.map(\.count).max() ?? 1
        var tokens = [Int32](repeating: pad, count: rows.count * max(1, t))
        for (b, r) in rows.enumerated() { for (j, x) in r.enumerated() { tokens[b * t + j] = x } }
        self.init(batch: rows.count, seqLen: max(1, t), tokens: tokens, lengths: rows.map(\.count),
                  scoreFrom: scoreFrom ?? Array(repeating: 1, count: rows.count))
    }
}

extension TokenBatch {
    /// The position a sequence classifier reads in row `b`: the rightmost token that is not `pad`
    /// (transformers' `argmax(arange(T) · (ids != pad))`, which is 0 when every token is pad), or
    /// `lengths[b] − 1` when the model has no pad id.
    public func lastNonPadIndex(row b: Int, pad: Int?) -> Int {
        guard let pad else { return lengths[b] - 1 }
        var last = 0
        for t in 0..<seqLen where tokens[b * seqLen + t] != Int32(pad) { last = t }
        return last
    }
}

/// Receives named intermediate activations ([N, C]) during a forward pass, for debugging and tests.
public typealias ActivationProbe = (_ name: String, _ values: UnsafeBufferPointer<Float>) -> Void

/// A Llama-family model: config, weights and the precomputed RoPE table.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let layout: ParameterLayout
    public let parameters: ParameterBuffer
    let rope: RoPETable

    public init(config: LlamaConfig, parameters: ParameterBuffer) {
        require(parameters.count == ParameterLayout(config: config).count, "parameters do not match config")
        self.config = config
        self.layout = parameters.layout
        self.parameters = parameters
        self.rope = RoPETable(headDim: config.headDim, theta: config.ropeTheta,
                              maxPositions: max(config.maxPositionEmbeddings, 1))
    }

    /// Checks a batch against the workspace and the model before any work starts.
    func validate(_ batch: TokenBatch, _ ws: LlamaWorkspace) throws {
        let b = batch.batch, t = batch.seqLen
        guard b >= 1, t >= 1, b <= ws.maxBatch, t <= ws.maxSeqLen else {
            throw ModelError("batch [\(b), \(t)] exceeds the workspace [\(ws.maxBatch), \(ws.maxSeqLen)]")
        }
        guard t <= rope.maxPositions else {
            throw ModelError("sequence length \(t) exceeds max_position_embeddings (\(rope.maxPositions))")
        }
        if let w = config.slidingWindow, t > w {
            throw ModelError("sequence length \(t) exceeds the sliding window (\(w)); sliding-window attention is not implemented")
        }
        guard batch.tokens.count == b * t, batch.lengths.count == b, batch.scoreFrom.count == b else {
            throw ModelError("token batch arrays do not match its shape [\(b), \(t)]")
        }
        let v = Int32(config.vocabSize)
        for (i, x) in batch.tokens.enumerated() where x < 0 || x >= v {
            throw ModelError("token id \(x) at row \(i / t), position \(i % t) is outside the vocabulary (0..<\(v))")
        }
        for r in 0..<b where batch.lengths[r] < 1 || batch.lengths[r] > t {
            throw ModelError("row \(r) has length \(batch.lengths[r]), expected 1...\(t)")
        }
    }

    /// Runs the model; returns per-position outputs [B·T] (in `ws.output`):
    /// LM head — log p(x[b, j] | x[b, <j]) at each scored j, 0 elsewhere;
    /// score head — the score at every position (a reward model reads the last non-pad one).
    /// With `lora`, every targeted projection adds its adapter's s · B(A x); without, the base runs alone.
    @discardableResult
    public func forward(_ batch: TokenBatch, workspace ws: LlamaWorkspace, lora: LoRAActivations? = nil,
                        probe: ActivationProbe? = nil) throws -> UnsafeBufferPointer<Float>
    {
        try validate(batch, ws)
        if let lora { try lora.check(model: config, rows: batch.batch * batch.seqLen) }
        let c = config, w = parameters.base
        let B = batch.batch, T = batch.seqLen, N = B * T
        let C = c.hiddenSize, A = c.attentionWidth, F = c.intermediateSize, QKV = c.qkvWidth
        let shape = AttentionShape(batch: B, seqLen: T, heads: c.numHeads, kvHeads: c.numKVHeads, headDim: c.headDim)
        func show(_ name: String, _ p: FloatPtr, _ width: Int) {
            probe?(name, UnsafeBufferPointer(start: p, count: N * width))
        }

        batch.tokens.withUnsafeBufferPointer { tok in
            let emb = w + layout.embed
            for n in 0..<N { (ws.resid[0] + n * C).update(from: emb + Int(tok[n]) * C, count: C) }
        }
        show("embed", ws.resid[0], C)
        for l in 0..<c.numLayers {
            let o = layout.layers[l], x = ws.resid[l]
            rmsnormForward(y: ws.norm1[l], rstd: ws.rstd1[l], x: x, w: w + o.inputNorm, rows: N, channels: C, eps: c.rmsNormEps)
            show("layer\(l).input_layernorm", ws.norm1[l], C)
            linearForward(y: ws.qkv[l], x: ws.norm1[l], w: w + o.qkv, rows: N, inDim: C, outDim: QKV)
            lora?.forward(layer: l, group: .qkv, x: ws.norm1[l], y: ws.qkv[l], rows: N, yStride: QKV)
            ropeApply(ws.qkv[l], table: rope, rows: N, seqLen: T, stride: QKV, heads: c.numHeads)
            ropeApply(ws.qkv[l] + A, table: rope, rows: N, seqLen: T, stride: QKV, heads: c.numKVHeads)
            attentionForward(out: ws.attn[l], probs: ws.probs[l], qkv: ws.qkv[l], shape: shape)
            linearForward(y: ws.dtmp, x: ws.attn[l], w: w + o.o, rows: N, inDim: A, outDim: C)
            lora?.forward(layer: l, group: .o, x: ws.attn[l], y: ws.dtmp, rows: N, yStride: C)
            show("layer\(l).attn_out", ws.dtmp, C)
            addRows(ws.mid[l], x, ws.dtmp, N * C)
            rmsnormForward(y: ws.norm2[l], rstd: ws.rstd2[l], x: ws.mid[l], w: w + o.postNorm, rows: N, channels: C, eps: c.rmsNormEps)
            show("layer\(l).post_attention_layernorm", ws.norm2[l], C)
            linearForward(y: ws.gateUp[l], x: ws.norm2[l], w: w + o.gateUp, rows: N, inDim: C, outDim: 2 * F)
            lora?.forward(layer: l, group: .gateUp, x: ws.norm2[l], y: ws.gateUp[l], rows: N, yStride: 2 * F)
            swigluForward(h: ws.act[l], gu: ws.gateUp[l], rows: N, hidden: F)
            linearForward(y: ws.dtmp, x: ws.act[l], w: w + o.down, rows: N, inDim: F, outDim: C)
            lora?.forward(layer: l, group: .down, x: ws.act[l], y: ws.dtmp, rows: N, yStride: C)
            show("layer\(l).mlp_out", ws.dtmp, C)
            addRows(ws.resid[l + 1], ws.mid[l], ws.dtmp, N * C)
            show("layer\(l).out", ws.resid[l + 1], C)
        }
        rmsnormForward(y: ws.normF, rstd: ws.rstdF, x: ws.resid[c.numLayers], w: w + layout.finalNorm,
                       rows: N, channels: C, eps: c.rmsNormEps)
        show("final_norm", ws.normF, C)

        ws.output.update(repeating: 0, count: N)
        switch c.head {
        case .causalLM: lmHeadForward(batch, ws)
        case .score:
            let ws8 = lora?.adapter.scoreOffset.map { lora!.adapter.weights.base + $0 } ?? w + layout.head
            parallelRows(N, minRowsPerTask: 64) { r in
                for n in r { ws.output[n] = vdot(ws.normF + n * C, ws8, C) }
            }
        }
        return UnsafeBufferPointer(start: ws.output, count: N)
    }

    /// Gathers the predictor rows of every scored target, then runs the LM head chunk by chunk.
    private func lmHeadForward(_ batch: TokenBatch, _ ws: LlamaWorkspace) {
        let C = config.hiddenSize, V = config.vocabSize, T = batch.seqLen
        var r = 0
        for b in 0..<batch.batch {
            for j in max(1, batch.scoreFrom[b])..<max(1, batch.lengths[b]) {
                ws.sel[r] = b * T + j - 1
                ws.target[r] = batch.tokens[b * T + j]
                r += 1
            }
        }
        ws.selCount = r
        for i in 0..<r { (ws.hsel + i * C).update(from: ws.normF + ws.sel[i] * C, count: C) }
        let chunk = ws.logitChunkRows, head = parameters.base + layout.head, invT = ws.head.inverseTemperature
        var start = 0
        while start < r {
            let rows = min(chunk, r - start)
            linearForward(y: ws.logits, x: ws.hsel + start * C, w: head, rows: rows, inDim: C, outDim: V)
            if invT != 1 { vscale(ws.logits, invT, rows * V) }
            logSoftmaxGatherForward(logp: ws.logpSel + start, lse: ws.lse + start, logits: ws.logits,
                                    target: ws.target + start, rows: rows, vocab: V)
            if ws.head.entropies {
                softmaxEntropyForward(entropy: ws.entropySel + start, logits: ws.logits, lse: ws.lse + start, rows: rows, vocab: V)
            }
            start += rows
        }
        ws.logitsCached = r <= chunk
        for i in 0..<r { ws.output[ws.sel[i] + 1] = ws.logpSel[i] }
        if ws.head.entropies {
            ws.entropy.update(repeating: 0, count: batch.batch * T)
            for i in 0..<r { ws.entropy[ws.sel[i] + 1] = ws.entropySel[i] }
        }
    }

    /// Backward of the last `forward` on the same batch and workspace: given dL/d(output) [B·T]
    /// (dL/d logp at scored positions for the LM head, dL/d score per position for the score head),
    /// adds the gradient of every parameter into `gradients` (same layout; zero it first).
    /// A nil `gradients` freezes the base (no weight-gradient product runs); `lora` (the activations
    /// of a forward with the adapter on) adds the adapter's gradients into `loraGradients`.
    public func backward(
        _ batch: TokenBatch, outputGradient dout: UnsafeBufferPointer<Float>, gradients: ParameterBuffer?,
        lora: LoRAActivations? = nil, loraGradients: ParameterBuffer? = nil, workspace ws: LlamaWorkspace
    ) {
        let c = config, w = parameters.base, g = gradients?.base
        let B = batch.batch, T = batch.seqLen, N = B * T
        require(dout.count >= N && (gradients == nil || gradients!.count == parameters.count),
                "backward: output-gradient or gradient buffer does not match the model")
        require((lora == nil) == (loraGradients == nil) && (lora == nil || loraGradients!.count == lora!.adapter.weights.count),
                "backward: LoRA activations and LoRA gradients come together, in the adapter's layout")
        func adapt(_ l: Int, _ group: LoRAGroup, dy: FloatPtr, stride: Int, x: FloatPtr, dx: FloatPtr) {
            guard let lora, let lg = loraGradients else { return }
            lora.backward(layer: l, group: group, dy: dy, dyStride: stride, x: x, dx: dx, rows: N, gradients: lg.base)
        }
        let C = c.hiddenSize, A = c.attentionWidth, F = c.intermediateSize, QKV = c.qkvWidth
        let shape = AttentionShape(batch: B, seqLen: T, heads: c.numHeads, kvHeads: c.numKVHeads, headDim: c.headDim)

        // Head → dnorm (gradient of the final norm's output).
        switch c.head {
        case .causalLM: lmHeadBackward(dout, g, ws, rows: N)
        case .score:
            // A reward model's adapter carries its own score head (and so its gradient).
            let own = lora?.adapter.scoreOffset
            let hw = own.map { lora!.adapter.weights.base + $0 } ?? w + layout.head
            let hg = own.flatMap { o in loraGradients.map { $0.base + o } } ?? g.map { $0 + layout.head }
            for n in 0..<N {
                let d = dout[n]
                let dn = ws.dnorm + n * C
                if d == 0 { dn.update(repeating: 0, count: C); continue }
                for i in 0..<C { dn[i] = d * hw[i] }
                if let hg { vaxpy(hg, d, ws.normF + n * C, C) }
            }
        }
        rmsnormBackward(dx: ws.dresid, dw: g.map { $0 + layout.finalNorm }, dy: ws.dnorm, x: ws.resid[c.numLayers],
                        w: w + layout.finalNorm, rstd: ws.rstdF, rows: N, channels: C, accumulate: false,
                        scratch: ws.normScratch, scratchParts: ws.normScratchParts)
        for l in stride(from: c.numLayers - 1, through: 0, by: -1) {
            let o = layout.layers[l]
            // MLP: resid[l+1] = mid + down(silu(gate) ⊙ up)
            linearBackward(dx: ws.dact, dw: g.map { $0 + o.down }, dy: ws.dresid, x: ws.act[l], w: w + o.down,
                           rows: N, inDim: F, outDim: C)
            adapt(l, .down, dy: ws.dresid, stride: C, x: ws.act[l], dx: ws.dact)
            swigluBackward(dgu: ws.dgateUp, dh: ws.dact, gu: ws.gateUp[l], rows: N, hidden: F)
            linearBackward(dx: ws.dnorm, dw: g.map { $0 + o.gateUp }, dy: ws.dgateUp, x: ws.norm2[l], w: w + o.gateUp,
                           rows: N, inDim: C, outDim: 2 * F)
            adapt(l, .gateUp, dy: ws.dgateUp, stride: 2 * F, x: ws.norm2[l], dx: ws.dnorm)
            rmsnormBackward(dx: ws.dresid, dw: g.map { $0 + o.postNorm }, dy: ws.dnorm, x: ws.mid[l], w: w + o.postNorm,
                            rstd: ws.rstd2[l], rows: N, channels: C, accumulate: true,
                            scratch: ws.normScratch, scratchParts: ws.normScratchParts)
            // Attention: mid = resid[l] + o_proj(attn(rope(q), rope(k), v))
            linearBackward(dx: ws.dtmp, dw: g.map { $0 + o.o }, dy: ws.dresid, x: ws.attn[l], w: w + o.o,
                           rows: N, inDim: A, outDim: C)
            adapt(l, .o, dy: ws.dresid, stride: C, x: ws.attn[l], dx: ws.dtmp)
            attentionBackward(dqkv: ws.dqkv, dout: ws.dtmp, probs: ws.probs[l], qkv: ws.qkv[l], shape: shape,
                              scratch: ws.attnScratch)
            ropeApply(ws.dqkv, table: rope, rows: N, seqLen: T, stride: QKV, heads: c.numHeads, inverse: true)
            ropeApply(ws.dqkv + A, table: rope, rows: N, seqLen: T, stride: QKV, heads: c.numKVHeads, inverse: true)
            linearBackward(dx: ws.dnorm, dw: g.map { $0 + o.qkv }, dy: ws.dqkv, x: ws.norm1[l], w: w + o.qkv,
                           rows: N, inDim: C, outDim: QKV)
            adapt(l, .qkv, dy: ws.dqkv, stride: QKV, x: ws.norm1[l], dx: ws.dnorm)
            rmsnormBackward(dx: ws.dresid, dw: g.map { $0 + o.inputNorm }, dy: ws.dnorm, x: ws.resid[l], w: w + o.inputNorm,
                            rstd: ws.rstd1[l], rows: N, channels: C, accumulate: true,
                            scratch: ws.normScratch, scratchParts: ws.normScratchParts)
        }
        // Embedding lookup: scatter-add rows, in row order (deterministic).
        guard let g else { return }
        let ge = g + layout.embed
        batch.tokens.withUnsafeBufferPointer { tok in
            for n in 0..<N { vadd(ge + Int(tok[n]) * C, ws.dresid + n * C, C) }
        }
    }

    private func lmHeadBackward(_ dout: UnsafeBufferPointer<Float>, _ g: FloatPtr?, _ ws: LlamaWorkspace, rows N: Int) {
        let C = config.hiddenSize, V = config.vocabSize, r = ws.selCount
        let head = parameters.base + layout.head
        // dL/d logp of each scored row, reusing logpSel as storage; × 1/T carries the temperature
        // through (d logits = (1/T) · d(scaled logits), and the softmax backward is linear in dlogp).
        let invT = ws.head.inverseTemperature
        for i in 0..<r { ws.logpSel[i] = invT == 1 ? dout[ws.sel[i] + 1] : dout[ws.sel[i] + 1] * invT }
        let chunk = ws.logitChunkRows
        var start = 0
        while start < r {
            let rows = min(chunk, r - start)
            if !ws.logitsCached {
                linearForward(y: ws.logits, x: ws.hsel + start * C, w: head, rows: rows, inDim: C, outDim: V)
                if invT != 1 { vscale(ws.logits, invT, rows * V) }
            }
            logSoftmaxGatherBackward(logits: ws.logits, lse: ws.lse + start, dlogp: ws.logpSel + start,
                                     target: ws.target + start, rows: rows, vocab: V)
            linearBackward(dx: ws.dhsel + start * C, dw: g.map { $0 + layout.head }, dy: ws.logits, x: ws.hsel + start * C,
                           w: head, rows: rows, inDim: C, outDim: V)
            start += rows
        }
        ws.logitsCached = false  // the in-place backward consumed them
        ws.dnorm.update(repeating: 0, count: N * C)
        for i in 0..<r { (ws.dnorm + ws.sel[i] * C).update(from: ws.dhsel + i * C, count: C) }
    }
}

/// dst[i] = a[i] + b[i] over n floats (row-parallel).
@inline(__always)
func addRows(_ dst: FloatPtr, _ a: ConstFloatPtr, _ b: ConstFloatPtr, _ n: Int) {
    let blocks = (n + 4095) / 4096
    parallelRows(blocks, minRowsPerTask: 4) { r in
        let lo = r.lowerBound * 4096, hi = min(n, r.upperBound * 4096)
        if lo < hi {
            (dst + lo).update(from: a + lo, count: hi - lo)
            vadd(dst + lo, b + lo, hi - lo)
        }
    }
}

extension LlamaModel {
    /// Full logits [rows, V] of the last forward's positions `rows` (row index b·T + t), written to `out`.
    /// Used by samplers and tests; training reads log-probabilities from `forward` instead.
    public func headLogits(rows: Range<Int>, workspace ws: LlamaWorkspace, into out: FloatPtr) {
        require(config.head == .causalLM, "headLogits needs an LM head")
        let C = config.hiddenSize
        linearForward(y: out, x: ws.normF + rows.lowerBound * C, w: parameters.base + layout.head,
                      rows: rows.count, inDim: C, outDim: config.vocabSize)
    }
}
