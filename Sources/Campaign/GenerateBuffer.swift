// `rondo generate --output FILE.jsonl.zst`: the samples written as an (unlabelled) rollout
// buffer — the same format as a campaign round's, readable with `zstdcat | jq` and
// `rondo inspect`. Other outputs are plain JSON lines (Sampling's GenerateJob).

import Foundation
import Model
import Rollouts
import Sampling

public enum GenerateCommand {
    /// Runs `rondo generate`; returns a one-line summary.
    public static func run(_ o: GenerateOptions, progress: (String) -> Void = { _ in }) throws -> String {
        guard let out = o.output, out.lastPathComponent.hasSuffix(".zst") else {
            return try GenerateJob.run(o, progress: progress)
        }
        guard out.lastPathComponent.hasSuffix(".jsonl.zst") else {
            throw CampaignError("\(out.path): a rollout buffer is named NAME.jsonl.zst (its manifest becomes NAME.manifest.json)")
        }
        let r = try GenerateJob.generate(o, progress: progress)
        let t0 = Date()
        let policy = try sha256(of: o.model.appendingPathComponent("model.safetensors"))
        let w = try BufferWriter(url: out, header: BufferHeader(policySHA256: policy))
        for (i, s) in r.samples.enumerated() {
            try w.append(SampleRecord(
                id: i, promptIndex: s.promptIndex, sampleIndex: s.sampleIndex,
                prompt: r.tokenizer?.decode(r.prompts[s.promptIndex]), promptIDs: r.prompts[s.promptIndex],
                responseIDs: s.tokens, response: r.tokenizer?.decode(s.tokens, skipSpecialTokens: true), logprobs: s.logprobs,
                finishReason: s.finishReason.rawValue,
                seed: SeedStream(seed: o.sampling.seed, stream: UInt64(s.promptIndex) << 20 | UInt64(s.sampleIndex))))
        }
        let m = try w.finish(timings: ["sample_s": r.seconds, "write_s": Date().timeIntervalSince(t0)])
        return "generated \(m.records) samples (\(r.tokens) tokens) for \(r.prompts.count) prompts in \(String(format: "%.2f", r.seconds)) s; wrote the buffer \(out.path)"
    }
}
