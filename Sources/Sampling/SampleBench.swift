// `rondo bench sample`: batched sampling speed, measured as the peer harness measures HF
// `model.generate` (../shared/bench/peers/generate.py): random prompts, plain ancestral sampling
// (temperature 1, no top-k / top-p), EOS ignored so every row generates all tokens; warm-up calls,
// then medians over timed calls; one JSON line with the peer's key names.
//   new_tokens_per_s = batch · new tokens / wall time of the whole call (prefill included)
//   prefill_ms = call start → first logits;  decode_ms_per_token_step = (last − first logits) / (new − 1)
//   sampler_setup_ms = making the sampler, i.e. the decoder's copy of the weights (once per model,
//   outside the timed calls, like the peer's model load)
// The machine's limits, measured in the same run after the timed calls (`MachineRates`):
//   stream_gb_per_s = the fastest read of the decoder's weight matrices on `threads` threads (best
//     of 5 passes of each split: contiguous slices, or each 1 MB shared out as the workers share
//     each matrix; vector loads with the decode kernels' prefetch)
//   fma_peak_gflop_per_s = the cores' peak: the decode kernel variant's widest fused multiply-adds,
//     independent chains on `threads` threads (best of 3)
//   sgemm_gflop_per_s = OpenBLAS on `threads` threads at one layer's product shapes with
//     min(batch · prompt_len, 512) rows (sgemm_rows), with the kernel set OpenBLAS picked (sgemm_core)
//   bound_ms_per_step = max(weight bytes / stream rate, step FLOPs / max(FMA peak, sgemm rate)),
//     the step's FLOPs counted at the mean context (prompt_len + new_tokens / 2): no code on this
//     machine can do the step faster than both the read and the arithmetic. The FMA peak, not only
//     sgemm, because OpenBLAS's rate says what its kernels reach on this CPU, not what the CPU can
//     do (on a CPU its build does not know it falls back to SSE3 kernels, 6× below the peak).
//     fraction_of_bound = bound / decode
//   prefill_gflop_per_s = the prefill's FLOPs (LM head for the last prompt rows only) / prefill_ms;
//     prefill_fraction_of_sgemm and prefill_fraction_of_peak = that over each rate

import Foundation
import Kernels
import Model

/// Options of a sampling benchmark.
public struct SampleBenchOptions: Sendable {
    /// A model directory, or an HF config.json (random init, seed 1234) when `sourceIsConfig`.
    public var source: URL
    /// `source` is a config.json rather than a model directory.
    public var sourceIsConfig: Bool
    /// Sequences decoded at once.
    public var batch = 1
    /// Random prompt tokens per row.
    public var promptLen = 32
    /// Tokens generated per row.
    public var newTokens = 128
    /// Timed calls.
    public var repeats = 5
    /// Warm-up calls (not timed).
    public var warmup = 1
    /// Threads for products and kernels.
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Options with the peer's defaults (batch 1, 32-token prompts, 128 new tokens).
    public init(source: URL, sourceIsConfig: Bool) { self.source = source; self.sourceIsConfig = sourceIsConfig }
}

/// The sampling benchmark.
public enum SampleBench {
    /// Runs the benchmark and returns the JSON line; `progress` gets a line per call.
    public static func run(_ o: SampleBenchOptions, progress: (String) -> Void = { _ in }) throws -> String {
        guard o.batch >= 1, o.promptLen >= 1, o.newTokens >= 2, o.repeats >= 1, o.warmup >= 0 else {
            throw SamplingError("--batch ≥ 1, --prompt-len ≥ 1, --new-tokens ≥ 2, --repeats ≥ 1 and --warmup ≥ 0 are required")
        }
        Threads.configure(o.threads)
        let config: LlamaConfig, params: ParameterBuffer
        if o.sourceIsConfig {
            config = try LlamaConfig.load(o.source)
            params = ModelDirectory.randomInit(config: config, seed: 1234)
        } else {
            let m = try ModelDirectory.load(o.source)
            config = m.config; params = m.parameters
        }
        guard config.head == .causalLM else { throw SamplingError("bench sample needs a causal LM") }
        let model = LlamaModel(config: config, parameters: params)
        var sc = SamplingConfig()
        sc.maxNewTokens = o.newTokens
        sc.stopTokenIDs = []  // EOS ignored: every row generates all tokens, as the peer's min_new_tokens
        sc.batchSize = o.batch
        sc.seed = 1
        let setup0 = DispatchTime.now().uptimeNanoseconds
        let sampler = try Sampler(model: model, config: sc)
        let setupMs = Double(DispatchTime.now().uptimeNanoseconds - setup0) / 1e6
        // Random prompt tokens in 3..<V (the peer draws randint(3, V)).
        let V = config.vocabSize, low = V > 3 ? 3 : 0
        let rng = Philox(seed: 0, stream: 0x5A3B)
        let prompts: [[Int32]] = (0..<o.batch).map { b in
            (0..<o.promptLen).map { j in
                Int32(low + Int(rng.block(UInt64(b * o.promptLen + j)).0 % UInt32(V - low)))
            }
        }
        var calls: [Double] = [], prefill: [Double] = [], decode: [Double] = []
        var stamps: [UInt64] = []
        stamps.reserveCapacity(o.newTokens + 8)
        for call in 0..<(o.warmup + o.repeats) {
            stamps.removeAll(keepingCapacity: true)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let samples = try sampler.generate(prompts) { event in
                switch event {
                case .prefill, .step: stamps.append(DispatchTime.now().uptimeNanoseconds)
                case .finished: break
                }
            }
            let t1 = DispatchTime.now().uptimeNanoseconds
            guard samples.allSatisfy({ $0.tokens.count == o.newTokens }), stamps.count == o.newTokens else {
                throw SamplingError("internal: a row stopped before \(o.newTokens) tokens")
            }
            let ms = Double(t1 - t0) / 1e6
            if call >= o.warmup {
                calls.append(ms)
                prefill.append(Double(stamps[0] - t0) / 1e6)
                decode.append(Double(stamps[stamps.count - 1] - stamps[0]) / 1e6 / Double(o.newTokens - 1))
            }
            progress("call \(call + 1)/\(o.warmup + o.repeats)\(call < o.warmup ? " (warm-up)" : ""): \(String(format: "%.1f", ms)) ms")
        }
        let newTokens = Double(o.batch * o.newTokens)
        let ms = median(calls), dec = median(decode)
        let fields: [(String, String)] = [
            ("bench", "\"sample\""), ("model", jsonString(o.source.path)), ("batch", "\(o.batch)"),
            ("prompt_len", "\(o.promptLen)"), ("new_tokens", "\(o.newTokens)"), ("warmup", "\(o.warmup)"),
            ("repeats", "\(o.repeats)"), ("threads", "\(o.threads)"),
            ("ms_per_call", formatFixed(ms)), ("ms_per_call_min_max", "[\(formatFixed(calls.min()!)), \(formatFixed(calls.max()!))]"),
            ("new_tokens_per_s", formatFixed(newTokens / (ms / 1e3))),
            ("new_tokens_per_s_min_max", "[\(formatFixed(newTokens / (calls.max()! / 1e3))), \(formatFixed(newTokens / (calls.min()! / 1e3)))]"),
            ("prefill_ms", formatFixed(median(prefill), 3)), ("decode_ms_per_token_step", formatFixed(dec, 3)),
            ("decode_tokens_per_s_median", formatFixed(Double(o.batch) / (dec / 1e3))),
            ("n_params", "\(params.count)"), ("sampler_setup_ms", formatFixed(setupMs, 1)),
            ("decoder_mib", formatFixed(Double(sampler.decoderBytes) / 1_048_576)),
            ("peak_rss_mib", formatFixed(peakRSSMiB())),
        ] + limits(o, config: config, sampler: sampler, decodeMs: dec, prefillMs: median(prefill))
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// The measured limits and the run's fractions of them (see the file header), as JSON fields.
    private static func limits(_ o: SampleBenchOptions, config: LlamaConfig, sampler: Sampler, decodeMs: Double,
                               prefillMs: Double) -> [(String, String)] {
        let weights = sampler.weightMatrices
        let stream = MachineRates.streamGBps(weights, threads: o.threads)
        let rows = o.batch * o.promptLen
        let sgemm = measuredSgemmGFLOPS(config: config, rows: rows, threads: o.threads)
        let peak = MachineRates.fmaPeakGFLOPS(kernel: DecodeKernel.selected, threads: o.threads)
        let stepFLOPs = Double(o.batch) * config.forwardFLOPsPerRow(context: o.promptLen + o.newTokens / 2)
        let bytes = Double(weights.count * 4)
        let boundMs = max(bytes / (stream * 1e9), stepFLOPs / (max(peak, sgemm) * 1e9)) * 1e3
        let headFLOPs = 2 * Double(config.vocabSize * config.hiddenSize)
        let promptFLOPs = (1...o.promptLen).reduce(0.0) { $0 + config.forwardFLOPsPerRow(context: $1) }
            - Double(o.promptLen - 1) * headFLOPs
        let prefillGFLOPS = Double(o.batch) * promptFLOPs / (prefillMs / 1e3) / 1e9
        return [
            ("decode_kernel", jsonString(DecodeKernel.selected.rawValue)),
            ("weight_bytes", "\(weights.count * 4)"), ("stream_gb_per_s", formatFixed(stream)),
            ("sgemm_rows", "\(min(rows, sgemmRateMaxRows))"), ("sgemm_gflop_per_s", formatFixed(sgemm)),
            ("sgemm_core", jsonString(MachineRates.blasCoreName)), ("fma_peak_gflop_per_s", formatFixed(peak)),
            ("decode_flop_per_step", formatFixed(stepFLOPs, 0)),
            ("bound_ms_per_step", formatSignificant(boundMs)), ("fraction_of_bound", formatSignificant(boundMs / decodeMs)),
            ("prefill_gflop_per_s", formatFixed(prefillGFLOPS)),
            ("prefill_fraction_of_sgemm", formatSignificant(prefillGFLOPS / sgemm)),
            ("prefill_fraction_of_peak", formatSignificant(prefillGFLOPS / peak)),
        ]
    }
}
