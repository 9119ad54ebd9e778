// Checks of a prompt's token ids shared by every reader of prompt files (`rondo generate`, campaign
// prompt sets): ids are integers inside the vocabulary (never wrapped to 32 bits), and the prompt
// leaves room for the response in the model's positions. Errors say what is wrong; callers prefix
// the file and line.

import Model

public enum PromptTokens {
    /// A `prompt_ids` value as token ids: an array of integers, each in 0..<vocabSize.
    public static func ids(_ value: JSONValue, vocabSize: Int) throws -> [Int32] {
        guard let arr = value.array else { throw SamplingError("\"prompt_ids\" must be an array of integers") }
        return try ids(arr.map { v in
            guard let x = v.int else { throw SamplingError("\"prompt_ids\" holds \(v), not an integer") }
            return x
        }, vocabSize: vocabSize)
    }

    /// Integers as token ids, each in 0..<vocabSize.
    public static func ids(_ values: [Int], vocabSize: Int) throws -> [Int32] {
        try values.map { x in
            guard x >= 0, x < vocabSize else {
                throw SamplingError("token id \(x) is outside the model's vocabulary (0..<\(vocabSize))")
            }
            return Int32(x)
        }
    }

    /// Checks that a prompt of `count` tokens is not empty and, with `maxNewTokens` new tokens,
    /// fits the model's `positions`; `setting` names where max_new_tokens was set.
    public static func checkLength(_ count: Int, maxNewTokens: Int, positions: Int, setting: String) throws {
        guard count > 0 else {
            throw SamplingError("the prompt is empty; the first token needs a context, start prompts with BOS")
        }
        guard count + maxNewTokens - 1 <= positions else {
            throw SamplingError("the prompt has \(count) tokens; with \(setting) \(maxNewTokens) it needs \(count + maxNewTokens - 1) positions, the model has \(positions) (max_position_embeddings)")
        }
    }
}
