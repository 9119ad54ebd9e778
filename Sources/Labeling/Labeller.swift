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
    /// The response (index in the request) the error is about, when it is about one.
    public let response: Int?
    /// The labeller stopped waiting because a stop was requested, not because it failed.
    public let interrupted: Bool
    public init(_ description: String, response: Int? = nil, interrupted: Bool = false) {
        self.description = description; self.response = response; self.interrupted = interrupted
    }
}

/// Scores responses; one score per response, higher is better.
public protocol Labeller: AnyObject {
    /// Recorded in every label, e.g. "verifier", "command:my-judge", "reward_model:1a2b3c4d5e6f".
    var id: String { get }
    func score(_ request: LabelRequest) throws -> [Float]
}

/// The largest score magnitude a label can hold (labels are float32).
public let maxScoreMagnitude = Double(Float.greatestFiniteMagnitude)

extension Labeller {
    /// `score`, checked: one score per response, each finite (float32). Errors name the labeller
    /// and the response.
    public func checkedScore(_ request: LabelRequest) throws -> [Float] {
        let s = try score(request)
        guard s.count == request.responses.count else {
            throw LabelError("\(id): \(s.count) scores for \(request.responses.count) responses")
        }
        if let k = s.firstIndex(where: { !$0.isFinite }) {
            throw LabelError("\(id): score \(s[k]) of response \(k) is not finite; scores must be finite float32 numbers", response: k)
        }
        return s
    }
}
