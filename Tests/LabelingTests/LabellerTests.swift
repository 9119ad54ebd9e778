// Labellers: the verifier's rules, the command judge against real subprocesses (a correct judge,
// one that crashes, one that hangs, one that prints garbage), and the reward-model labeller
// against the oracle's reward scores.

import Foundation
import Labeling
import Model
import Testing
import TestSupport

let repoRoot = Fixtures.oracle.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Writes a Python judge script into `dir` and returns its command line.
func judgeScript(_ dir: URL, _ name: String, _ body: String) throws -> [String] {
    let url = dir.appendingPathComponent("\(name).py")
    try ("import json, sys, time, os\n" + body).write(to: url, atomically: true, encoding: .utf8)
    return ["/usr/bin/python3", url.path]
}

func request(_ responses: [String], prompt: String = "12+35=", answer: String? = "47") -> LabelRequest {
    LabelRequest(prompt: prompt, promptIDs: [0], answer: answer, responses: responses, responseIDs: responses.map { _ in [1] })
}

@Suite struct VerifierTests {
    @Test func numericAnswers() {
        for ok in ["47", " 47", "47.", "= 47", "the answer is 47\nmore 12", "47.0", "4,7"] {
            #expect(Verifier.matches(ok, "47") == (ok != "4,7"), "\(ok)")
        }
        for bad in ["46", "", "x", "\n47", "470", "-47", "4 7"] { #expect(!Verifier.matches(bad, "47"), "\(bad)") }
        #expect(Verifier.matches("-12", "-12") && Verifier.matches("1,000", "1000") && Verifier.matches("2.50", "2.5"))
    }

    @Test func textAnswers() {
        #expect(Verifier.matches("  Paris. ", "paris"))
        #expect(Verifier.matches("New   York!", "new york"))
        #expect(!Verifier.matches("Paris is", "paris"))
        #expect(Verifier.matches("ｐａｒｉｓ", "paris"))  // NFKC folds full-width letters
    }

    @Test func scoresAndMissingAnswer() throws {
        #expect(try Verifier().score(request(["47", "46", "47\n"])) == [1, 0, 1])
        #expect(throws: LabelError.self) { try Verifier().score(request(["47"], answer: nil)) }
    }
}

@Suite struct CommandJudgeTests {
    @Test func exampleJudgeScoresAndStaysUp() throws {
        let script = repoRoot.appendingPathComponent("policies/judges/arithmetic_judge.py")
        let judge = try CommandJudge(name: "arith", command: ["/usr/bin/python3", script.path], timeout: 20)
        defer { judge.stop() }
        #expect(try judge.score(request(["47", "46", "= 47 yes"])) == [1, 0, 1])
        #expect(try judge.score(request(["-3"], prompt: "2-5=", answer: nil)) == [1])
        #expect(judge.restarts == 0)
        #expect(judge.id == "command:arith")
    }

    @Test func crashingJudgeIsRestartedThenGivenUp() throws {
        try withTemporaryDirectory { dir in
            // Answers the first request of each life, then exits with status 3 on the next one.
            let cmd = try judgeScript(dir, "crash", """
                first = True
                for line in sys.stdin:
                    req = json.loads(line)
                    if not first:
                        sys.stderr.write("judge: out of memory\\n"); sys.stderr.flush(); sys.exit(3)
                    first = False
                    print(json.dumps({"id": req["id"], "scores": [0.5] * len(req["responses"])}), flush=True)
                """)
            let judge = try CommandJudge(name: "crashy", command: cmd, timeout: 20, maxRestarts: 2)
            defer { judge.stop() }
            #expect(try judge.score(request(["a"])) == [0.5])
            #expect(try judge.score(request(["a", "b"])) == [0.5, 0.5])  // crashed, restarted, answered
            #expect(judge.restarts == 1)
            _ = try judge.score(request(["c"]))  // crash → restart 2
            do {
                _ = try judge.score(request(["d"]))
                Issue.record("a judge that keeps crashing was not given up on")
            } catch let e as LabelError {
                #expect(e.description.contains("crashy") && e.description.contains("restarts"), "\(e)")
                #expect(e.description.contains("out of memory"), "stderr tail missing: \(e)")
            }
        }
    }

    @Test func hangingJudgeTimesOut() throws {
        try withTemporaryDirectory { dir in
            let cmd = try judgeScript(dir, "hang", "for line in sys.stdin:\n    time.sleep(60)\n")
            let judge = try CommandJudge(name: "sleepy", command: cmd, timeout: 0.5, maxRestarts: 1)
            defer { judge.stop() }
            let t0 = Date()
            do {
                _ = try judge.score(request(["47"]))
                Issue.record("a hanging judge did not time out")
            } catch let e as LabelError {
                #expect(e.description.contains("sleepy") && e.description.contains("within 0.5 s"), "\(e)")
            }
            #expect(Date().timeIntervalSince(t0) < 10)
            #expect(judge.restarts == 1)
        }
    }

    @Test func garbageReplyIsQuoted() throws {
        try withTemporaryDirectory { dir in
            let cmd = try judgeScript(dir, "garbage", "for line in sys.stdin:\n    print('Score: looks good to me!', flush=True)\n")
            let judge = try CommandJudge(name: "chatty", command: cmd, timeout: 20)
            defer { judge.stop() }
            do {
                _ = try judge.score(request(["47"]))
                Issue.record("garbage was accepted")
            } catch let e as LabelError {
                #expect(e.description.contains("chatty") && e.description.contains("Score: looks good to me!"), "\(e)")
            }
            let wrongCount = try judgeScript(dir, "count", "for line in sys.stdin:\n    print(json.dumps({'scores': [1]}), flush=True)\n")
            let j2 = try CommandJudge(name: "short", command: wrongCount, timeout: 20)
            defer { j2.stop() }
            #expect(throws: LabelError.self) { try j2.score(request(["a", "b"])) }
        }
    }

    @Test func missingProgramIsAClearError() throws {
        let judge = try CommandJudge(name: "ghost", command: ["/nonexistent/judge"], timeout: 1)
        #expect(throws: LabelError.self) { try judge.score(request(["47"])) }
    }
}

@Suite struct RewardModelLabellerTests {
    @Test func matchesOracleScores() throws {
        let cases = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: Fixtures.cases))
        let rm = cases["cases"]!["reward_model"]!
        let ids = rm["input_ids"]!.array!.map { $0.array!.map { Int32($0.int!) } }
        let mask = rm["attention_mask"]!.array!.map { $0.array!.map { $0.int! } }
        let expected = rm["scores"]!.array!.map { Float($0.double!) }
        let labeller = try RewardModelLabeller(directory: Fixtures.reward, weightsSHA256: "abc", batchSize: 3)
        let seqs = zip(ids, mask).map { row, m in Array(row.prefix(m.reduce(0, +))) }
        // Each sequence as prompt (its first token) + response (the rest), scored in one request.
        let req = LabelRequest(prompt: "", promptIDs: [seqs[0][0]], answer: nil, responses: seqs.map { _ in "" },
                               responseIDs: seqs.map { Array($0.dropFirst()) })
        precondition(seqs.allSatisfy { $0[0] == seqs[0][0] })
        let got = try labeller.score(req)
        for (g, e) in zip(got, expected) { #expect(abs(g - e) <= 1e-5 * max(1, abs(e)), "\(g) vs \(e)") }
        #expect(labeller.id == "reward_model:abc")
    }
}
