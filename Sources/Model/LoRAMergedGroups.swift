// W + s·B·A one projection group at a time, for a consumer that copies the weights anyway (the
// decoder's tiled copy, DecodeWeights): the merged group lives in a scratch buffer the size of the
// largest group (B1: gate/up, 134 MB) instead of a second full model (B1: 4.9 GB). The arithmetic is
// `LoRAAdapter.addDelta`'s, so the result equals `merge(into:)` / `rondo merge` bit for bit.

import Kernels

/// Merged weights of one (layer, group) at a time; the base buffer is never written.
final class LoRAMergedGroups {
    let adapter: LoRAAdapter
    let parameters: ParameterBuffer
    private let scratch: FloatPtr, delta: FloatPtr
    private let scratchCount: Int

    init(adapter: LoRAAdapter, parameters: ParameterBuffer) {
        let c = adapter.modelConfig
        require(parameters.count == ParameterLayout(config: c).count, "LoRA merge: the base does not match the adapter's model shape")
        self.adapter = adapter
        self.parameters = parameters
        let C = c.hiddenSize, F = c.intermediateSize
        scratchCount = max(c.qkvWidth * C, C * c.attentionWidth, 2 * F * C)
        scratch = FloatPtr.allocate(capacity: scratchCount)
        delta = FloatPtr.allocate(capacity: adapter.largestModule)
    }

    deinit { scratch.deallocate(); delta.deallocate() }

    /// The stacked weight rows of `group` in `layer` (qkv: [q; k; v], gateUp: [gate; up]) with the
    /// adapter merged — valid until the next call — or the base's own rows when no module adapts them.
    func weights(layer l: Int, group: LoRAGroup) -> ConstFloatPtr {
        let c = adapter.modelConfig, o = parameters.layout.layers[l]
        let C = c.hiddenSize, F = c.intermediateSize
        let (offset, count): (Int, Int) = switch group {
        case .qkv: (o.qkv, c.qkvWidth * C)
        case .o: (o.o, C * c.attentionWidth)
        case .gateUp: (o.gateUp, 2 * F * C)
        case .down: (o.down, C * F)
        }
        let mods = adapter.byGroup[l][group.rawValue]
        guard !mods.isEmpty else { return ConstFloatPtr(parameters.base + offset) }
        scratch.update(from: parameters.base + offset, count: count)
        for m in mods { adapter.addDelta(m, into: scratch + m.column * m.inDim, scratch: delta) }
        return ConstFloatPtr(scratch)
    }
}
