// Labellers score sampled responses: the built-in verifier, an external command judge, or a
// trained reward model. The campaign turns scores into preference pairs.

import Foundation

/// One prompt with its sampled responses, as a labeller sees them.
public struct LabelRequest: Sendable {
    public var prompt: String
    public var promptIDs: [Int32]
    /// The reference answer, for verifiers (from the prompt file's `answer`).
    public var answer: String?
    public var responses: [String]
    public var responseIDs: [[Int32]]
    public init(prompt: String, promptIDs: [Int32], answer: String?, responses: [String], responseIDs: [[Int32]]) {
        self.prompt = prompt; self.promptIDs = promptIDs; self.answer = answer
        self.responses = responses; self.responseIDs = responseIDs
    }
}

/// A labelling failure: which labeller, what happened, what to do.
public struct LabelError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Scores responses; one score per response, higher is better.
public protocol Labeller: AnyObject {
    /// Recorded in every label, e.g. "verifier", "command:my-judge", "reward_model:1a2b3c4d5e6f".
    var id: String { get }
    func score(_ request: LabelRequest) throws -> [Float]
}
