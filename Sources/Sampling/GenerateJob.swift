// `rondo generate`: samples responses for the prompts of a JSON-lines file.
//
// Input lines: {"prompt": "text"} — encoded with the model directory's tokenizer.json as HF
// `encode(text, add_special_tokens=False)` (special tokens written in the text, e.g. "<|bos|>",
// are recognised; nothing is added) — or {"prompt_ids": [...]}, or TRL's conversational
// {"prompt": [messages]}, rendered with the model's chat template and the generation prompt. Every line is read and checked
// before any sampling starts; errors name file:line.
// Output: one line per sample, ordered by (prompt, sample):
//   {"prompt_index": i, "sample_index": j, "response_ids": [...], "response": "text",
//    "logprobs": [...], "finish_reason": "eos" | "stop" | "length"}
// "response" (only when the model directory has a tokenizer) decodes response_ids with special
// tokens skipped; "logprobs" are per response token at temperature 1 (see Sampler.swift).

import Foundation
import Kernels
import Model
import Templates
import Tokenizers

/// Options of a generate run.
public struct GenerateOptions: Sendable {
    /// HF model directory (config.json, model.safetensors, optional tokenizer.json).
    public var model: URL
    /// JSON-lines prompts ('-' for standard input).
    public var prompts: URL
    /// nil writes to standard output; a file is written atomically.
    public var output: URL?
    /// How to sample.
    public var sampling = SamplingConfig()
    /// Threads for products and kernels.
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// A PEFT LoRA adapter for `model`: decode with W + s·B·A folded into the sampler's weights.
    public var adapter: URL?

    /// Options with the default sampling settings.
    public init(model: URL, prompts: URL, output: URL?) {
        self.model = model; self.prompts = prompts; self.output = output
    }
}

/// Samples responses for a file of prompts.
public enum GenerateJob {
    /// What `generate` produced: the prompts as token ids, the samples, and the tokenizer if any.
    public struct Result {
        public var prompts: [[Int32]]
        public var samples: [Sample]
        public var tokenizer: Tokenizer?
        public var tokens: Int
        public var seconds: Double
        /// The model directory the samples came from.
        public var model: URL
    }

    /// Loads the model and prompts and samples every prompt (no output written).
    public static func generate(_ o: GenerateOptions, progress: (String) -> Void = { _ in }) throws -> Result {
        try o.sampling.validate()
        Threads.configure(o.threads)
        let loaded = try ModelDirectory.load(o.model)
        guard loaded.config.head == .causalLM else {
            throw SamplingError("\(o.model.path): is a score (reward/value) model; generate needs a causal LM")
        }
        let tokURL = o.model.appendingPathComponent("tokenizer.json")
        let tokenizer = FileManager.default.fileExists(atPath: tokURL.path) ? try Tokenizer(url: tokURL) : nil
        if !o.sampling.stopStrings.isEmpty && tokenizer == nil {
            throw SamplingError("--stop needs the tokenizer, and \(o.model.path) has no tokenizer.json")
        }
        var template: ModelTemplate??  // loaded on the first conversational line
        let prompts = try readPrompts(o.prompts, tokenizer: tokenizer, config: loaded.config, sampling: o.sampling) {
            if template == nil { template = .some(try ModelTemplate.load(directory: o.model)) }
            return template ?? nil
        }
        if let a = o.adapter {
            // The loaded weights are the sampler's own copy: merge in place (PEFT's merge_and_unload).
            let adapter: LoRAAdapter
            do { adapter = try LoRAAdapter.load(from: a, model: loaded.config) } catch let e as ModelError { throw SamplingError(e.description) }
            adapter.merge(into: loaded.parameters)
        }
        let model = LlamaModel(config: loaded.config, parameters: loaded.parameters)
        let sampler = try Sampler(model: model, config: o.sampling, tokenBytes: tokenizer.map { t in { t.bytes($0) } })
        let started = Date()
        let total = prompts.count * o.sampling.n
        var done = 0, tokens = 0
        let samples = try sampler.generate(prompts) { event in
            if case .finished(_, _, let n) = event {
                done += 1; tokens += n
                let secs = Date().timeIntervalSince(started)
                progress("sampled \(done)/\(total), \(tokens) tokens, \(String(format: "%.0f", Double(tokens) / max(secs, 1e-9))) tokens/s")
            }
        }
        return Result(prompts: prompts, samples: samples, tokenizer: tokenizer, tokens: tokens,
                      seconds: Date().timeIntervalSince(started), model: o.model)
    }

    /// Runs the job; returns a one-line summary. `progress` receives a line per finished sample.
    @discardableResult
    public static func run(_ o: GenerateOptions, progress: (String) -> Void = { _ in }) throws -> String {
        let r = try generate(o, progress: progress)
        let (samples, tokenizer, prompts, tokens) = (r.samples, r.tokenizer, r.prompts, r.tokens)
        var out = ""
        out.reserveCapacity(samples.count * 256)
        for s in samples {
            out += "{\"prompt_index\": \(s.promptIndex), \"sample_index\": \(s.sampleIndex), \"response_ids\": ["
            out += s.tokens.map { String($0) }.joined(separator: ", ")
            out += "]"
            if let tokenizer {
                out += ", \"response\": " + jsonString(tokenizer.decode(s.tokens, skipSpecialTokens: true))
            }
            out += ", \"logprobs\": [" + s.logprobs.map { jsonNumber($0) }.joined(separator: ", ") + "]"
            out += ", \"finish_reason\": \"\(s.finishReason.rawValue)\"}\n"
        }
        if let url = o.output {
            try AtomicFile.write(Data(out.utf8), to: url)
        } else {
            FileHandle.standardOutput.write(Data(out.utf8))
        }
        let secs = r.seconds
        return "generated \(samples.count) samples (\(tokens) tokens) for \(prompts.count) prompts in \(String(format: "%.2f", secs)) s (\(String(format: "%.0f", Double(tokens) / max(secs, 1e-9))) tokens/s)"
    }

    /// A conversational prompt line rendered with the model's chat template.
    static func conversation(_ line: Data, template: () throws -> ModelTemplate?, at: String) throws -> String {
        do {
            guard let t = try template() else {
                throw SamplingError("\(at): \"prompt\" is a list of chat messages but the model directory has no chat template (chat_template.jinja or \"chat_template\" in tokenizer_config.json)")
            }
            return try t.renderPrompt(line: line, source: at)
        } catch let e as TemplateError {
            throw SamplingError("\(at): chat template: \(e)")
        }
    }

    /// Reads and checks every prompt line before any work starts; errors name file and line.
    static func readPrompts(_ url: URL, tokenizer: Tokenizer?, config: LlamaConfig, sampling: SamplingConfig,
                            template: () throws -> ModelTemplate? = { nil }) throws -> [[Int32]] {
        let data: Data
        do {
            data = url.path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: url)
        } catch {
            throw SamplingError("\(url.path): cannot read (\(error.localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SamplingError("\(url.path): not UTF-8 text; expected JSON lines")
        }
        let V = config.vocabSize, positions = max(1, config.maxPositionEmbeddings)
        let expected = "expected a JSON object with \"prompt\" (text) or \"prompt_ids\" (array of token ids)"
        var prompts: [[Int32]] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if raw.allSatisfy(\.isWhitespace) { continue }
            let at = "\(url.path):\(i + 1)"
            guard let object = (try? JSONDecoder().decode(JSONValue.self, from: Data(raw.utf8)))?.object else {
                throw SamplingError("\(at): \(expected); the line is not a JSON object")
            }
            let ids: [Int32]
            switch (object["prompt"], object["prompt_ids"]) {
            case (.some, .some):
                throw SamplingError("\(at): has both \"prompt\" and \"prompt_ids\"; give one")
            case (.some(let p), nil):
                guard p.string != nil || p.array != nil else {
                    throw SamplingError("\(at): \"prompt\" must be a string or a list of chat messages")
                }
                guard let tokenizer else {
                    throw SamplingError("\(at): \"prompt\" is text but the model directory has no tokenizer.json; give \"prompt_ids\" instead")
                }
                ids = tokenizer.encode(try p.string ?? conversation(Data(raw.utf8), template: template, at: at))
            case (nil, .some(let p)):
                do { ids = try PromptTokens.ids(p, vocabSize: V) } catch let e as SamplingError { throw SamplingError("\(at): \(e)") }
            case (nil, nil):
                throw SamplingError("\(at): \(expected)")
            }
            do {
                try PromptTokens.checkLength(ids.count, maxNewTokens: sampling.maxNewTokens, positions: positions, setting: "--max-new-tokens")
            } catch let e as SamplingError { throw SamplingError("\(at): \(e)") }
            prompts.append(ids)
        }
        return prompts
    }
}
