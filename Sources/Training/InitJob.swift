// `rondo init`: a fresh random model directory from an HF config.json.

import Foundation
import Model

public enum InitJob {
    /// Writes a randomly initialised model (HF init convention, counter-based seed) to `out`.
    public static func run(config url: URL, out: URL, seed: UInt64) throws -> String {
        let config = try LlamaConfig.load(url)
        let params = ModelDirectory.randomInit(config: config, seed: seed)
        let aux = url.deletingLastPathComponent()
        try ModelDirectory.save(config: config, parameters: params, to: out, copyingAuxiliaryFilesFrom: aux)
        return "wrote \(out.path): \(params.count) parameters, seed \(seed)"
    }
}
