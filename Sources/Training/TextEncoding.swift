// The bridge from a model directory's `tokenizer.json` to the data readers' `TextEncoder`.
// The tokenizer and the chat template (for conversational data) are loaded on first use, so data given as token ids never needs one.
// `Tokenizer.encode` is HF `encode(text, add_special_tokens=False)`: special tokens written in the
// text (e.g. a BOS at the start of a prompt) are recognised, none are added.

import Foundation
import Model
import Templates
import Tokenizers

/// A `TextEncoder` over `dir/tokenizer.json`, or nil when the directory has none.
func loadTextEncoder(_ dir: URL, eos: Int32?) throws -> TextEncoder? {
    let file = dir.appendingPathComponent("tokenizer.json")
    guard FileManager.default.fileExists(atPath: file.path) else { return nil }
    var tokenizer: Tokenizer?
    var template: ModelTemplate??  // loaded on first use: .some(nil) = the directory has none
    let chatTemplate: () throws -> ModelTemplate? = {
        if template == nil { template = .some(try ModelTemplate.load(directory: dir)) }
        return template ?? nil
    }
    return TextEncoder(eos: eos, chatTemplate: chatTemplate) { text in
        if tokenizer == nil {
            do { tokenizer = try Tokenizer(url: file) } catch { throw JobError("\(error)") }
        }
        return tokenizer!.encode(text)
    }
}
