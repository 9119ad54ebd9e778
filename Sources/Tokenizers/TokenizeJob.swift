// `rondo tokenize`: a JSON-lines filter. Each input line {"text": …} becomes {"ids": [...]}
// (HF `encode(text, add_special_tokens=False)`); with `decode`, {"ids": [...]} becomes
// {"text": …} (HF `decode(ids, skip_special_tokens)`). Lines are processed as they arrive, so the
// command can run as a co-process; blank lines are skipped; a bad line stops the run with an error
// naming its number.

import Foundation
import RondoSupport

/// Options of a tokenize run.
public struct TokenizeOptions: Sendable {
    /// tokenizer.json, or a directory containing it.
    public var tokenizer: URL
    /// Read {"ids": [...]} lines and write {"text": …} lines.
    public var decode = false
    /// With `decode`: drop special tokens.
    public var skipSpecialTokens = false
    public init(tokenizer: URL) { self.tokenizer = tokenizer }
}

/// Encodes or decodes JSON lines.
public enum TokenizeJob {
    /// Reads JSON lines from `input` until end of file and writes one line per non-blank input line
    /// to `output`; returns a one-line summary. `inputName` names the input in error messages.
    @discardableResult
    public static func run(_ o: TokenizeOptions, input: FileHandle = .standardInput,
                           output: FileHandle = .standardOutput, inputName: String = "stdin") throws -> String {
        let tokenizer = try Tokenizer(url: o.tokenizer)
        var pending = Data()
        var lineNumber = 0
        var lines = 0
        var tokens = 0
        func process(_ line: Data) throws -> String? {
            lineNumber += 1
            guard line.contains(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0D) }) else { return nil }
            let place = "\(inputName):\(lineNumber)"
            guard let obj = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                throw TokenizerError("\(place): not a JSON object; expected \(o.decode ? "{\"ids\": [...]}" : "{\"text\": \"...\"}")")
            }
            lines += 1
            if o.decode {
                guard let raw = obj["ids"] as? [Any] else { throw TokenizerError("\(place): expected an integer array \"ids\"") }
                var ids: [Int32] = []
                ids.reserveCapacity(raw.count)
                for v in raw {
                    guard let id = v as? Int, id >= 0, id < tokenizer.vocabularySize else {
                        throw TokenizerError("\(place): token id \(v) is not in the vocabulary (0..<\(tokenizer.vocabularySize))")
                    }
                    ids.append(Int32(id))
                }
                tokens += ids.count
                return "{\"text\": \(jsonString(tokenizer.decode(ids, skipSpecialTokens: o.skipSpecialTokens)))}"
            }
            guard let text = obj["text"] as? String else { throw TokenizerError("\(place): expected a string \"text\"") }
            let ids = tokenizer.encode(text)
            tokens += ids.count
            return "{\"ids\": [" + ids.map(String.init).joined(separator: ", ") + "]}"
        }
        while true {
            let chunk = input.availableData
            let atEnd = chunk.isEmpty
            pending.append(chunk)
            var out = ""
            defer { if !out.isEmpty { output.write(Data(out.utf8)) } }  // also the lines before an error
            var consumed = pending.startIndex
            while let nl = pending[consumed...].firstIndex(of: 0x0A) {
                if let line = try process(pending[consumed..<nl]) { out += line + "\n" }
                consumed = nl + 1
            }
            if atEnd && consumed < pending.endIndex {
                if let line = try process(pending[consumed...]) { out += line + "\n" }
                consumed = pending.endIndex
            }
            pending = Data(pending[consumed...])
            if atEnd { break }
        }
        return "\(o.decode ? "decoded" : "encoded") \(lines) lines (\(tokens) tokens)"
    }
}
