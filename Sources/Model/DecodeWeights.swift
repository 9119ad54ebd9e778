// The decoder's copy of a model's parameters, its matrices in the layout its products read fastest.
//
// A decode step multiplies a handful of token rows by every weight matrix once, so it is bound
// by reading the weights from memory (R model: 538 MB per step). The decoder computes
// y[rows, 32] = x[rows, K] · W[n0..<n0+32, K]ᵀ one column tile at a time with its own
// micro-kernels (see LlamaDecode.swift and Sources/CKernels), and what matters is how the kernel
// walks the tile. Each tile is stored transposed as contiguous strips of 16 columns, Wᵀ[K, 16]:
// one cache line per k, so a kernel's pass over k reads each strip front to back while it
// requests the bytes a few KB ahead, and memory and arithmetic overlap.
// Measured (C harness built with gcc -O3, R's step shapes, 538 MB, 2 threads, batch 16): 42 ms with
// 64-column row-major tiles Wᵀ[K, 64] (each k a 256-byte row), 26 ms with strips.
//
// Layout of a matrix W[N, K]: tile j (rows 32j..<32j + width_j of W, width_j = min(32, N − 32j))
// starts at float offset 32j·K and is `DecodeKernel`'s strip layout of Wᵀ restricted to those
// rows: strip s (ws = min(16, width_j − 16s) rows of W) is [K, ws] row-major at 16s·K in the tile.
// The copy is a snapshot of every parameter the decoder reads (the matrices tiled, the embedding
// table and the norm vectors as they are): a decoder decodes the weights its model had when the
// copy was made (at the decoder's creation, or the `Sampler`'s, which shares one copy among the
// decoders it makes). With a LoRA adapter (whose base is frozen) the matrices hold W + s·B·A and the
// embedding table and the norm vectors are read from the base in place.

import Kernels

/// One weight matrix W[rows, cols] cut into transposed column tiles (see the file header).
struct TiledMatrix {
    /// Tile j starts at base + j · tileWidth · cols.
    let base: FloatPtr
    /// N: output columns of the product (rows of W).
    let rows: Int
    /// K: input width (columns of W).
    let cols: Int

    /// Column tiles of the product.
    var tiles: Int { (rows + tileWidth - 1) / tileWidth }

    /// Tile j (Wᵀ[K, width] in strips) and its width.
    @inline(__always) func tile(_ j: Int) -> (w: ConstFloatPtr, width: Int) {
        (ConstFloatPtr(base + j * tileWidth * cols), min(tileWidth, rows - j * tileWidth))
    }

    /// Tile j as a prefetch hint for the product before it; nil past the last tile.
    @inline(__always) func hint(_ j: Int) -> TileHint? {
        guard j < tiles else { return nil }
        let (w, width) = tile(j)
        return TileHint(w: w, k: cols, width: width)
    }

    /// Copies W[rows, cols] (row-major) into this layout.
    func fill(from w: ConstFloatPtr) {
        let K = cols, strip = DecodeKernel.stripColumns
        parallelFor(tiles) { j in
            let (t, width) = tile(j)
            for s in stride(from: 0, to: width, by: strip) {
                let ws = min(strip, width - s)
                let dst = FloatPtr(mutating: t) + s * K, src = w + (j * tileWidth + s) * K
                // Blocks of 16 k so that the source rows' reads and the destination's writes stay
                // within a few cache lines each.
                var k0 = 0
                while k0 < K {
                    let k1 = min(K, k0 + 16)
                    for c in 0..<ws {
                        let row = src + c * K
                        for k in k0..<k1 { dst[k * ws + c] = row[k] }
                    }
                    k0 = k1
                }
            }
        }
    }

    private var tileWidth: Int { decodeTileColumns }
}

/// Every matrix the decoder multiplies by, tiled: per layer qkv, o, gate, up, down; then the LM head.
/// With the embedding table and the norm vectors, a snapshot of `model`'s parameters at `init`.
public final class DecodeWeights: @unchecked Sendable {
    /// The model copied.
    public let model: LlamaModel
    let qkv: [TiledMatrix], o: [TiledMatrix], gate: [TiledMatrix], up: [TiledMatrix], down: [TiledMatrix]
    let head: TiledMatrix
    /// Copies of the embedding table [V, C], the per-layer norm weights [C] and the final norm's.
    let embed: ConstFloatPtr, inputNorm: [ConstFloatPtr], postNorm: [ConstFloatPtr], finalNorm: ConstFloatPtr
    private let arena: FloatArena

    /// Copies `model`'s parameters (M model: 135 MB in about 0.05 s on 2 cores, plus the first
    /// touch of the memory, up to 0.25 s more on this VM).
    ///
    /// With `adapter`, the tiled matrices hold W + s·B·A (merged one projection group at a time
    /// while copying, `LoRAMergedGroups`): the decoder runs the adapted model at the base's cost and
    /// no second full copy of the weights is made. A LoRA's base is frozen, so the embedding table
    /// and the norm vectors are then read from it in place (B1: 1 GB less).
    public init(model: LlamaModel, adapter: LoRAAdapter? = nil) {
        self.model = model
        let c = model.config, layout = model.layout, w = ConstFloatPtr(model.parameters.base)
        let C = c.hiddenSize, A = c.attentionWidth, F = c.intermediateSize, L = c.numLayers
        // (rows, cols, source) of every matrix, in the order of the properties above.
        var shapes: [(Int, Int, Int)] = []
        for l in 0..<L { shapes.append((c.qkvWidth, C, layout.layers[l].qkv)) }
        for l in 0..<L { shapes.append((C, A, layout.layers[l].o)) }
        for l in 0..<L { shapes.append((F, C, layout.layers[l].gateUp)) }
        for l in 0..<L { shapes.append((F, C, layout.layers[l].gateUp + F * C)) }
        for l in 0..<L { shapes.append((C, F, layout.layers[l].down)) }
        shapes.append((c.vocabSize, C, layout.head))
        // Then the vectors, copied as they are: embedding, input norms, post norms, final norm.
        var vectors: [(Int, Int)] = [(c.vocabSize * C, layout.embed)]
        for l in 0..<L { vectors.append((C, layout.layers[l].inputNorm)) }
        for l in 0..<L { vectors.append((C, layout.layers[l].postNorm)) }
        vectors.append((C, layout.finalNorm))
        let shared = adapter != nil
        let memory = FloatArena(sizes: shapes.map { $0.0 * $0.1 } + (shared ? [] : vectors.map(\.0)))
        arena = memory
        let copies: [ConstFloatPtr] = shared ? vectors.map { w + $0.1 } : zip(vectors, memory.blocks[shapes.count...]).map { v, base in
            base.update(from: w + v.1, count: v.0)
            return ConstFloatPtr(base)
        }
        embed = copies[0]; inputNorm = Array(copies[1...L]); postNorm = Array(copies[(L + 1)...(2 * L)])
        finalNorm = copies[2 * L + 1]
        let tiled = zip(shapes, memory.blocks).map { shape, base in TiledMatrix(base: base, rows: shape.0, cols: shape.1) }
        if let adapter {
            let merged = LoRAMergedGroups(adapter: adapter, parameters: model.parameters)
            for l in 0..<L {
                tiled[l].fill(from: merged.weights(layer: l, group: .qkv))
                tiled[L + l].fill(from: merged.weights(layer: l, group: .o))
                let gateUp = merged.weights(layer: l, group: .gateUp)
                tiled[2 * L + l].fill(from: gateUp)
                tiled[3 * L + l].fill(from: gateUp + F * C)
                tiled[4 * L + l].fill(from: merged.weights(layer: l, group: .down))
            }
            tiled[5 * L].fill(from: w + shapes[5 * L].2)
        } else {
            for (m, shape) in zip(tiled, shapes) { m.fill(from: w + shape.2) }
        }
        let end = shared ? memory.blocks[0] + memory.count : memory.blocks[shapes.count]
        self.matrices = UnsafeBufferPointer(start: memory.blocks[0], count: end - memory.blocks[0])
        qkv = Array(tiled[0..<L]); o = Array(tiled[L..<2 * L])
        gate = Array(tiled[2 * L..<3 * L]); up = Array(tiled[3 * L..<4 * L])
        down = Array(tiled[4 * L..<5 * L]); head = tiled[5 * L]
    }

    /// Bytes held by the copy.
    public var byteCount: Int { arena.count * 4 }

    /// The tiled matrices, contiguous: what a decode step reads from memory (apart from one
    /// embedding row and the norm vectors per token).
    public let matrices: UnsafeBufferPointer<Float>
}
