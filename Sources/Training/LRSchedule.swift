// Learning-rate schedules as transformers' `get_scheduler` builds them (a LambdaLR stepped once
// after every optimizer step, so optimizer step k — 0-based — runs at peak · λ(k)):
//   constant (`constant_with_warmup`): λ(k) = k < W ? k / W : 1
//   linear   (`linear`, TRL's default): λ(k) = k < W ? k / W : max(0, (S − k) / max(1, S − W))
//   cosine   (`cosine`, 0.5 cycles):    λ(k) = k < W ? k / W : max(0, ½ (1 + cos(π · (k − W) / max(1, S − W))))
// with W warm-up steps and S total optimizer steps. With W > 0 the first step runs at lr 0, as in HF.

import Foundation

/// The shape of a learning-rate schedule.
public enum LRScheduleKind: String, Codable, Sendable, CaseIterable {
    case constant, linear, cosine
}

/// A learning-rate schedule over a fixed number of optimizer steps.
public struct LRSchedule: Codable, Sendable, Equatable {
    public var kind: LRScheduleKind
    /// Peak learning rate.
    public var peak: Double
    /// Linear warm-up steps W (from 0 to the peak).
    public var warmupSteps: Int
    /// Total optimizer steps S of the run (decay reaches 0 at S for linear and cosine).
    public var totalSteps: Int

    public init(kind: LRScheduleKind, peak: Double, warmupSteps: Int = 0, totalSteps: Int) {
        self.kind = kind; self.peak = peak; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    /// The learning rate of optimizer step `k` (0-based).
    public func lr(step k: Int) -> Double {
        let w = warmupSteps, s = totalSteps
        if k < w { return peak * Double(k) / Double(max(1, w)) }
        switch kind {
        case .constant:
            return peak
        case .linear:
            return peak * max(0, Double(s - k) / Double(max(1, s - w)))
        case .cosine:
            let progress = Double(k - w) / Double(max(1, s - w))
            return peak * max(0, 0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}
