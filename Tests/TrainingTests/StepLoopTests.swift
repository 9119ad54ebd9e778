// The one optimizer-step loop (TrainingPlan.runSteps) that the offline jobs and the campaign's
// DPO and PPO updates share: every planned step once, in order, with the plan's micro-batches; a
// stop answer ends the run between steps.

import Testing
import Training

@Suite struct StepLoopTests {
    func plan(examples: Int = 10, batch: Int = 2, accum: Int = 1, epochs: Int = 2, stopAt: Int? = nil) -> TrainingPlan {
        var run = RunOptions()
        run.batchSize = batch; run.gradAccum = accum; run.epochs = epochs; run.seed = 7; run.stopAtStep = stopAt
        return TrainingPlan(examples: examples, run: run)
    }

    @Test func runsEveryPlannedStepWithItsMicroBatches() {
        let p = plan(accum: 2)
        var seen: [(Int, [[Int]])] = []
        let completed = p.runSteps { s, micro in seen.append((s, micro)); return .proceed }
        #expect(completed)
        #expect(seen.map(\.0) == Array(0..<p.lastStep) && p.lastStep == 6)
        for (s, micro) in seen { #expect(micro == p.microBatches(step: s)) }
        // Every epoch visits each example once.
        #expect(Set(seen.prefix(3).flatMap { $0.1.joined() }) == Set(0..<10))
    }

    @Test func stopAnswerEndsBetweenSteps() {
        let p = plan()
        var ran: [Int] = []
        let completed = p.runSteps { s, _ in ran.append(s); return s == 3 ? .stop : .proceed }
        #expect(!completed && ran == [0, 1, 2, 3])
        // A stop at the last planned step still completes the plan.
        var last = 0
        #expect(p.runSteps { s, _ in last = s; return s == p.lastStep - 1 ? .stop : .proceed })
        #expect(last == p.lastStep - 1)
    }

    @Test func resumesFromAStepAndHonoursStopAtStep() {
        let p = plan(stopAt: 7)
        var ran: [Int] = []
        #expect(p.runSteps(from: 4) { s, _ in ran.append(s); return .proceed })
        #expect(ran == [4, 5, 6])
        #expect(p.runSteps(from: 9) { _, _ in Issue.record("no step after the plan's end"); return .proceed })
    }
}
