// `rondo template`: renders conversations with a model directory's chat template, so users can
// see exactly what the model will see. Each input line {"messages": [...], "tools": ..., ...}
// becomes {"text": "..."}; every key but "messages" is a template variable (`add_generation_prompt`
// defaults to true, `continue_final_message` to false, as in transformers; `bos_token`/`eos_token`
// override the directory's). A line whose template
// raises becomes {"error": "<message>"} and rendering goes on; malformed input lines stop the run
// with an error naming the file and line.

import Foundation

/// Options of a template run.
public struct TemplateOptions: Sendable {
    /// The model directory (chat_template.jinja or tokenizer_config.json).
    public var model: URL
    /// JSON lines to render; nil reads standard input.
    public var messages: URL?
    /// Options for `model`, reading `messages` (nil: standard input).
    public init(model: URL, messages: URL? = nil) { self.model = model; self.messages = messages }
}

/// What a template run did.
public struct TemplateSummary: Sendable {
    /// Lines rendered to {"text": ...}.
    public var rendered = 0
    /// Lines whose template raised (written as {"error": ...}).
    public var failed = 0
    /// One line for standard error.
    public var description: String { "rendered \(rendered) lines, \(failed) raised" }
}

/// Renders JSON lines of conversations.
public enum TemplateJob {
    /// Reads every line, writes one output line per non-blank input line, and returns the counts.
    public static func run(_ o: TemplateOptions, input: FileHandle = .standardInput,
                           output: FileHandle = .standardOutput) throws -> TemplateSummary {
        guard let model = try ModelTemplate.load(directory: o.model) else {
            throw TemplateError(.loading, "no chat template: add chat_template.jinja or a \"chat_template\" to tokenizer_config.json",
                                template: o.model.path)
        }
        let name = o.messages?.path ?? "stdin"
        let data: Data
        do { data = try o.messages.map { try Data(contentsOf: $0) } ?? input.readDataToEndOfFile() } catch {
            throw TemplateError(.loading, "cannot read (\(error.localizedDescription))", template: name)
        }
        var summary = TemplateSummary()
        var out = ""
        for (i, line) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            guard line.contains(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0D) }) else { continue }
            let place = "\(name):\(i + 1)"
            guard case .dict(let obj) = try JSON.parse(Data(line), source: place), case .list? = obj["messages"] else {
                throw TemplateError(.loading, "expected a JSON object with a \"messages\" list", template: place)
            }
            var variables: [String: Value] = [:]
            for (k, v) in obj.pairs where k != "messages" { variables[k] = v }
            let continueFinal = variables.removeValue(forKey: "continue_final_message")?.truthy ?? false
            let addGenerationPrompt = variables.removeValue(forKey: "add_generation_prompt")?.truthy ?? !continueFinal
            do {
                let text = try model.render(messages: obj["messages"] ?? .list([]), addGenerationPrompt: addGenerationPrompt,
                                            continueFinalMessage: continueFinal, variables)
                out += "{\"text\": \(JSON.quote(text, lineSafe: true))}\n"
                summary.rendered += 1
            } catch let e as TemplateError {
                out += "{\"error\": \(JSON.quote(e.description, lineSafe: true))}\n"
                summary.failed += 1
            }
        }
        output.write(Data(out.utf8))
        return summary
    }
}
