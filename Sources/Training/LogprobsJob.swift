// `rondo logprobs`: per-token log-probabilities of responses under a causal LM.
//
// Input: JSON lines {"prompt_ids": [...], "response_ids": [...]} (other keys are kept).
// Output: each input line with "logprobs" (one per response token) and "sum" appended.

import Foundation
import Kernels
import Model

/// An error in user input or a job's run: what, where (file:line), and what to do.
public struct JobError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Options of a logprobs run.
public struct LogprobsOptions: Sendable {
    public var model: URL
    public var input: URL
    /// nil writes to standard output.
    public var output: URL?
    /// Sequences per forward pass.
    public var batchSize: Int = 16
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// A PEFT LoRA adapter for `model`: score with it on.
    public var adapter: URL?
    public init(model: URL, input: URL, output: URL?) {
        self.model = model; self.input = input; self.output = output
    }
}

/// Scores response tokens of a JSON-lines file.
public enum LogprobsJob {
    struct Line: Decodable {
        let prompt_ids: [Int]
        let response_ids: [Int]
    }

    struct Item {
        let text: Substring  // the input line, without trailing whitespace
        let ids: [Int32]
        let promptCount: Int
    }

    /// Runs the job; returns a one-line summary for the terminal.
    @discardableResult
    public static func run(_ opt: LogprobsOptions) throws -> String {
        Threads.configure(opt.threads)
        let loaded = try ModelDirectory.load(opt.model)
        guard loaded.config.head == .causalLM else {
            throw JobError("\(opt.model.path): is a \(loaded.config.raw["architectures"]?.array?.first?.string ?? "score") model; logprobs needs a causal LM")
        }
        let model = LlamaModel(config: loaded.config, parameters: loaded.parameters)
        let adapter = try LoRAJobSupport.adapter(opt.adapter.map { LoRAJobOptions(adapter: $0) }, model: loaded.config, seed: 0)
        let items = try readItems(opt.input, vocab: loaded.config.vocabSize)
        let started = Date()
        var out = ""
        out.reserveCapacity(items.count * 256)
        if !items.isEmpty {
            let maxLen = items.map(\.ids.count).max()!
            let bsz = max(1, min(opt.batchSize, items.count))
            let ws = LlamaWorkspace(config: loaded.config, maxBatch: bsz, maxSeqLen: maxLen)
            let lora = adapter.map { LoRAActivations(adapter: $0, maxRows: ws.maxRows) }
            let pad = loaded.config.batchPadID
            var start = 0
            while start < items.count {
                let group = items[start..<min(items.count, start + bsz)]
                let batch = TokenBatch(rows: group.map(\.ids), pad: pad, scoreFrom: group.map(\.promptCount))
                let lp = try model.forward(batch, workspace: ws, lora: lora)
                for (b, item) in group.enumerated() {
                    var sum = 0.0
                    var list = ""
                    for j in item.promptCount..<item.ids.count {
                        let v = lp[b * batch.seqLen + j]
                        sum += Double(v)
                        if !list.isEmpty { list += ", " }
                        list += jsonNumber(v)
                    }
                    out += item.text.dropLast()  // the closing brace
                    out += ", \"logprobs\": [\(list)], \"sum\": \(jsonNumber(Float(sum)))}\n"
                }
                start += bsz
            }
        }
        if let url = opt.output {
            try AtomicFile.write(Data(out.utf8), to: url)
        } else {
            FileHandle.standardOutput.write(Data(out.utf8))
        }
        let secs = Date().timeIntervalSince(started)
        let tokens = items.reduce(0) { $0 + $1.ids.count - $1.promptCount }
        return "scored \(items.count) sequences (\(tokens) response tokens) in \(String(format: "%.2f", secs)) s"
    }

    /// Reads and validates every line before any work starts; errors name file and line.
    static func readItems(_ url: URL, vocab: Int) throws -> [Item] {
        let data: Data
        do {
            data = url.path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: url)
        } catch {
            throw JobError("\(url.path): cannot read (\(error.localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw JobError("\(url.path): not UTF-8 text; expected JSON lines")
        }
        var items: [Item] = []
        let decoder = JSONDecoder()
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingSuffix { $0.isWhitespace }
            if line.allSatisfy(\.isWhitespace) { continue }
            let where_ = "\(url.path):\(i + 1)"
            let parsed: Line
            do { parsed = try decoder.decode(Line.self, from: Data(line.utf8)) } catch {
                throw JobError("\(where_): expected a JSON object with integer arrays \"prompt_ids\" and \"response_ids\" (\(describe(error)))")
            }
            guard line.last == "}" else { throw JobError("\(where_): expected one JSON object per line") }
            if let obj = try? decoder.decode([String: JSONValue].self, from: Data(line.utf8)),
               obj["logprobs"] != nil || obj["sum"] != nil {
                throw JobError("\(where_): already has \"logprobs\"/\"sum\"; remove them or pass the original input")
            }
            guard !parsed.prompt_ids.isEmpty else {
                throw JobError("\(where_): \"prompt_ids\" is empty; the first token has no prediction, start prompts with BOS")
            }
            for id in parsed.prompt_ids + parsed.response_ids where id < 0 || id >= vocab {
                throw JobError("\(where_): token id \(id) is outside the model's vocabulary (0..<\(vocab))")
            }
            items.append(Item(text: line, ids: (parsed.prompt_ids + parsed.response_ids).map(Int32.init),
                              promptCount: parsed.prompt_ids.count))
        }
        return items
    }
}

/// A short reason from a DecodingError.
func describe(_ error: Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, _): return "missing key \"\(key.stringValue)\""
    case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
        return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
    case DecodingError.dataCorrupted: return "invalid JSON"
    default: return "\(error)"
    }
}

extension Substring {
    func trimmingSuffix(while pred: (Character) -> Bool) -> Substring {
        var s = self
        while let c = s.last, pred(c) { s = s.dropLast() }
        return s
    }
}
