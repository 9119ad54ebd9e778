// `rondo template`.

import ArgumentParser
import Foundation
import Templates

struct Template: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render conversations with a model directory's chat template (what the model will see).",
        discussion: """
            Reads JSON lines {"messages": [...], "tools": ..., ...} from --messages or standard input and \
            writes {"text": "..."} per line, as transformers' apply_chat_template(tokenize=False). Every key \
            but "messages" is a template variable: add_generation_prompt (default true), enable_thinking, \
            date_string, bos_token, ... (overriding the directory's bos_token/eos_token).

            A line whose template raises gets {"error": "<message>"}; the command exits 1 after writing \
            every line.
            """)

    @Option(help: "Model directory with chat_template.jinja or a chat_template in tokenizer_config.json.")
    var model: String
    @Option(help: "JSON-lines file of conversations (default: standard input).")
    var messages: String?

    func run() throws {
        let o = TemplateOptions(model: URL(fileURLWithPath: model), messages: messages.map { URL(fileURLWithPath: $0) })
        let summary = try TemplateJob.run(o)
        report(summary.description)
        if summary.failed > 0 { throw ExitCode.failure }
    }
}
