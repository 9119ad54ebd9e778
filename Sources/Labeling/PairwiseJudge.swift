// Pairwise mode of the HTTP judge (`labeller.mode: pairwise`, docs/judges.md): the judge is shown
// one prompt and two responses, A and B, and the reply's `parse` group names the better one: `A`,
// `B` or `tie` (case-insensitive; anything else is unparseable). The judge gives no scores; which
// pairs are asked, in which orders, and what the verdicts make is the campaign's (Campaign's
// PairwiseJudging.swift). Requests, retries, metrics and the stop flag are the pointwise judge's.

import Foundation
import Templates

/// One pairwise question: the prompt, its reference answer, and the two responses in the order shown.
public struct PairwiseAsk: Sendable {
    public var prompt: String
    public var answer: String?
    public var responseA: String
    public var responseB: String
    public init(prompt: String, answer: String?, responseA: String, responseB: String) {
        self.prompt = prompt; self.answer = answer; self.responseA = responseA; self.responseB = responseB
    }
}

extension HTTPJudge {
    public static let defaultPairwiseTemplate = """
        Which response answers the prompt better?

        Prompt: {{ prompt }}
        {% if answer %}Reference answer: {{ answer }}
        {% endif %}Response A: {{ response_a }}

        Response B: {{ response_b }}

        Reply with one line: Verdict: A, Verdict: B or Verdict: tie
        """
    public static let defaultPairwiseParse = #"Verdict:\s*(A|B|tie)"#

    /// One JudgeCall per ask, in order (verdict "A", "B" or "tie", or an error); `concurrency` at a time.
    public func compare(_ asks: [PairwiseAsk]) throws -> [JudgeCall] {
        guard config.mode == .pairwise else {
            throw LabelError("\(id): labeller.mode is pointwise; it scores responses one at a time (judge)")
        }
        return try run(asks.map { try render($0) })
    }

    func render(_ ask: PairwiseAsk) throws -> String {
        var vars: [String: Value] = ["prompt": .string(ask.prompt), "response_a": .string(ask.responseA),
                                     "response_b": .string(ask.responseB)]
        vars["answer"] = ask.answer.map { .string($0) } ?? .none
        do { return try template.render(vars) } catch {
            throw LabelError("labeller.prompt_template \(config.promptTemplate ?? "(built-in pairwise)"): rendering failed: \(error)")
        }
    }

    /// The verdict in a reply's text ("A", "B" or "tie"; never a score), or why there is none.
    func parsePreference(_ text: String) -> (String?, Float?, String?) {
        let (found, why) = match(text)
        guard let raw = found else { return (nil, nil, why) }
        switch raw.trimmingCharacters(in: .whitespaces).lowercased() {
        case "a": return ("A", nil, nil)
        case "b": return ("B", nil, nil)
        case "tie": return ("tie", nil, nil)
        default: return (nil, nil, "verdict '\(raw)' is not A, B or tie")
        }
    }
}
