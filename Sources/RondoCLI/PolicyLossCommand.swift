// `rondo policy-loss`: the GRPO / RLOO loss of sampled completions (TRL 1.16 names and defaults).

import ArgumentParser
import Foundation
import Training

extension PolicyAlgorithm: ExpressibleByArgument {}
extension GRPOLossType: ExpressibleByArgument {}
extension ImportanceSamplingLevel: ExpressibleByArgument {}
extension RewardScaling: ExpressibleByArgument {}

struct PolicyLoss: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy-loss",
        abstract: "The GRPO or RLOO loss of sampled completions (as TRL's GRPOTrainer / RLOOTrainer), one JSON line.",
        discussion: """
            Data: JSON lines {"prompt_ids", "completion_ids", "old_logprobs" (per completion token, at the \
            sampling temperature; omit in every row for GRPO on-policy), "truncated" (default: the last \
            token is neither eos nor pad), and "advantage", or "reward" (null = unscorable) + "group" (the \
            rows of one prompt share it; Rondo computes the advantages as the campaign does)}. The file is \
            one generation batch and one micro-batch. Unset options take TRL 1.16's defaults (GRPO: \
            loss_type dapo, beta 0, epsilon 0.2; RLOO: beta 0.05). Prints loss, the reward metrics, the \
            loss metrics under TRL's names, and grad_norm.
            """)

    @Option(help: "Policy: an HF causal-LM directory.")
    var model: String
    @Option(help: "Reference for the KL term (default: the policy, as TRL).")
    var reference: String?
    @Option(help: "Rows (JSON lines).")
    var data: String
    @Option(help: "grpo or rloo.")
    var algorithm: PolicyAlgorithm
    @Option(help: "GRPO: grpo, dr_grpo, dapo, bnpo, cispo, sapo, luspo or vespo (default dapo).")
    var lossType: GRPOLossType?
    @Option(help: "KL coefficient (GRPO default 0, RLOO 0.05).")
    var beta: Double?
    @Option(help: "Lower clip ε (default 0.2).")
    var epsilon: Double?
    @Option(help: "Upper clip ε (default: epsilon); cispo: the absolute cap on the ratio.")
    var epsilonHigh: Double?
    @Option(help: "GRPO: two-sided clip, the unclipped branch uses min(r, delta) (default off).")
    var delta: Double?
    @Option(help: "GRPO: token or sequence (GSPO) (default token).")
    var importanceSamplingLevel: ImportanceSamplingLevel?
    @Option(help: "Sampling temperature of the log-probs (default 1).")
    var temperature: Double?
    @Option(help: "dr_grpo's normaliser (default 512).")
    var maxCompletionLength: Int?
    @Option(help: "GRPO sapo: gate temperature for A > 0 (default 1).")
    var sapoTemperaturePos: Double?
    @Option(help: "GRPO sapo: gate temperature for A ≤ 0 (default 1.05).")
    var sapoTemperatureNeg: Double?
    @Option(help: "GRPO vespo: k for A ≥ 0 (default 2).")
    var vespoKPos: Double?
    @Option(help: "GRPO vespo: λ for A ≥ 0 (default 3).")
    var vespoLambdaPos: Double?
    @Option(help: "GRPO vespo: k for A < 0 (default 3).")
    var vespoKNeg: Double?
    @Option(help: "GRPO vespo: λ for A < 0 (default 2).")
    var vespoLambdaNeg: Double?
    @Flag(help: "Give truncated completions mask 0.")
    var maskTruncatedCompletions = false
    @Flag(help: "GRPO: do not multiply the KL by the importance ratio.")
    var noBiasCorrectionKl = false
    @Option(help: "GRPO advantages from rewards: group, batch or none (default group).")
    var scaleRewards: RewardScaling?
    @Option(help: "RLOO advantages from rewards: clamp the rewards to 'LO,HI'.")
    var rewardClipRange: String?
    @Flag(help: "RLOO: whiten the advantages over the batch.")
    var normalizeAdvantages = false
    @Option(help: "Rows per forward pass.")
    var batchSize: Int = 16
    @Flag(help: "Evaluate only (required: training runs in a campaign).")
    var evalOnly = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard evalOnly else { throw ValidationError("policy-loss only evaluates (updates run in a campaign); pass --eval-only") }
        let grpoOnly: [(String, Bool)] = [
            ("--loss-type", lossType != nil), ("--delta", delta != nil), ("--importance-sampling-level", importanceSamplingLevel != nil),
            ("--sapo-temperature-pos", sapoTemperaturePos != nil), ("--sapo-temperature-neg", sapoTemperatureNeg != nil),
            ("--vespo-k-pos", vespoKPos != nil), ("--vespo-lambda-pos", vespoLambdaPos != nil), ("--vespo-k-neg", vespoKNeg != nil),
            ("--vespo-lambda-neg", vespoLambdaNeg != nil), ("--no-bias-correction-kl", noBiasCorrectionKl),
            ("--scale-rewards", scaleRewards != nil),
        ]
        let rlooOnly = [("--reward-clip-range", rewardClipRange != nil), ("--normalize-advantages", normalizeAdvantages)]
        let wrong = (algorithm == .grpo ? rlooOnly : grpoOnly).filter(\.1).map(\.0)
        if !wrong.isEmpty {
            throw ValidationError("\(wrong.joined(separator: ", ")) \(wrong.count == 1 ? "does" : "do") not apply to --algorithm \(algorithm.rawValue)")
        }
    }

    func run() throws {
        var o = PolicyLossOptions(model: URL(fileURLWithPath: model), data: URL(fileURLWithPath: data))
        o.reference = reference.map { URL(fileURLWithPath: $0) }
        o.algorithm = algorithm
        o.batchSize = batchSize
        o.threads = compute.threads
        switch algorithm {
        case .grpo: o.grpo = grpoConfig()
        case .rloo: o.rloo = try rlooConfig()
        }
        print(try PolicyLossJob.run(o))
    }

    func grpoConfig() -> GRPOConfig {
        var c = GRPOConfig()
        c.lossType = lossType ?? c.lossType; c.beta = beta ?? c.beta; c.epsilon = epsilon ?? c.epsilon
        c.epsilonHigh = epsilonHigh ?? c.epsilonHigh; c.delta = delta
        c.importanceSamplingLevel = importanceSamplingLevel ?? c.importanceSamplingLevel
        c.temperature = temperature ?? c.temperature; c.maxCompletionLength = maxCompletionLength ?? c.maxCompletionLength
        c.sapoTemperaturePos = sapoTemperaturePos ?? c.sapoTemperaturePos; c.sapoTemperatureNeg = sapoTemperatureNeg ?? c.sapoTemperatureNeg
        c.vespoKPos = vespoKPos ?? c.vespoKPos; c.vespoLambdaPos = vespoLambdaPos ?? c.vespoLambdaPos
        c.vespoKNeg = vespoKNeg ?? c.vespoKNeg; c.vespoLambdaNeg = vespoLambdaNeg ?? c.vespoLambdaNeg
        c.maskTruncatedCompletions = maskTruncatedCompletions; c.useBiasCorrectionKL = !noBiasCorrectionKl
        c.scaleRewards = scaleRewards ?? c.scaleRewards
        return c
    }

    func rlooConfig() throws -> RLOOConfig {
        var c = RLOOConfig()
        c.beta = beta ?? c.beta; c.epsilon = epsilon ?? c.epsilon; c.epsilonHigh = epsilonHigh ?? c.epsilonHigh
        c.temperature = temperature ?? c.temperature; c.maxCompletionLength = maxCompletionLength ?? c.maxCompletionLength
        c.maskTruncatedCompletions = maskTruncatedCompletions; c.normalizeAdvantages = normalizeAdvantages
        if let r = rewardClipRange {
            let parts = r.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2, let lo = parts[0], let hi = parts[1] else {
                throw ValidationError("--reward-clip-range must be 'LO,HI' (two numbers), got '\(r)'")
            }
            c.rewardClipRange = [lo, hi]
        }
        return c
    }
}
