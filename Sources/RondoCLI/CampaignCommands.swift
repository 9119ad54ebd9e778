// `rondo start`, `resume`, `status`, `replay`: the campaign daemon.

import ArgumentParser
import Campaign
import Collective
import Foundation

/// Campaign progress: one log line per phase, with a timestamp, on standard error.
func campaignLog(_ line: String) {
    let f = DateFormatter()
    f.dateFormat = "HH:mm:ss"
    FileHandle.standardError.write(Data("[\(f.string(from: Date()))] \(line)\n".utf8))
}

/// This process's ranks (MPI's world under mpirun with an MPI build) and its log: rank 0 logs; the
/// other ranks stay silent unless they fail (their error ends the job, see `Communicator.abort`).
func campaignRanks() throws -> (Communicator, (String) -> Void) {
    let c = try worldCommunicator()
    return (c, c.rank == 0 ? campaignLog : { _ in })
}

func finish(_ outcome: CampaignOutcome, rank: Int = 0) throws {
    guard rank == 0 else { return }
    switch outcome {
    case .finished(let n): campaignLog("done: \(n) rounds committed")
    case .stopped(let n) where n < 0: campaignLog("stopped before round 0 was committed; `rondo resume` starts it again")
    case .stopped(let n): campaignLog("stopped after round \(n); `rondo resume` continues")
    case .alarm(let r, let m):
        campaignLog("stopped by an alarm in round \(r): \(m) (alarms.action = stop)")
        throw ExitCode(3)
    }
}

/// Options of the commands that run or replay rounds; neither changes the campaign's config.
struct CampaignRunArguments: ParsableArguments {
    @Option(help: "Threads for matrix products and kernels (default: the count the campaign's last committed round — for replay, the round — ran with, else the config's `threads`; updates are the same bits for the same count).")
    var threads: Int?
    @Flag(help: "Continue although a pinned input (policy, tokenizer, prompts, judge, config.yaml) changed; recorded in the next round's metrics as inputs/changed.")
    var allowChangedInputs = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    var options: CampaignRunOptions { CampaignRunOptions(threads: threads, allowChangedInputs: allowChangedInputs) }
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a campaign directory and run its rounds in the foreground.",
        discussion: """
            Each round samples responses from the current policy, labels them, updates the policy with \
            DPO on preference pairs or with PPO on the scores (`algorithm.type`; policies/demo-ppo.yaml), \
            evaluates it on held-out prompts and commits the round atomically under DIR/rounds/NNNNNN. \
            Round 0 evaluates the starting policy. SIGINT/SIGTERM stop at the next safe point (a second \
            signal exits at once); `rondo resume DIR` continues. Fit for systemd and Docker: logs go to \
            standard error, one line per phase.
            """)

    @Argument(help: "Campaign config (YAML). Default: policies/demo.yaml.")
    var config: String = "policies/demo.yaml"
    @Option(help: "Campaign directory (default: runs/<config name>).")
    var dir: String?
    @Option(parsing: .unconditional, help: "Rounds to run (overrides the config's `rounds`).")
    var rounds: Int?
    @Option(help: "Threads for matrix products and kernels (default: the config's `threads`).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let rounds, rounds < 1 { throw ValidationError("--rounds must be ≥ 1 (got \(rounds))") }
    }

    func run() throws {
        let url = URL(fileURLWithPath: config)
        let d = dir ?? "runs/" + url.deletingPathExtension().lastPathComponent
        let (c, log) = try campaignRanks()
        try finish(CampaignCommands.start(config: url, dir: URL(fileURLWithPath: d), rounds: rounds,
                                          options: CampaignRunOptions(threads: threads), communicator: c, log: log), rank: c.rank)
    }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a campaign after its last committed round.",
        discussion: """
            With --from-round N, rounds after N are moved to DIR/archive (never deleted) and training continues \
            from round N's checkpoint (N must still have its full state; see `retention` in docs/config.md). \
            --rounds N sets the campaign's last round, e.g. to extend a finished campaign (recorded in \
            DIR/state.json; config.yaml stays as started). The inputs pinned at `start` must be unchanged.
            """)

    @Argument(help: "Campaign directory.")
    var dir: String
    @Option(parsing: .unconditional, help: "Continue from this committed round.")
    var fromRound: Int?
    @Option(parsing: .unconditional, help: "Run until this round (extends a finished campaign).")
    var rounds: Int?
    @OptionGroup var runOptions: CampaignRunArguments

    func validate() throws {
        if let fromRound, fromRound < 0 { throw ValidationError("--from-round must be ≥ 0 (got \(fromRound)); `rondo status DIR` lists the rounds") }
        if let rounds, rounds < 1 { throw ValidationError("--rounds must be ≥ 1 (got \(rounds))") }
    }

    func run() throws {
        let (c, log) = try campaignRanks()
        try finish(CampaignCommands.resume(dir: URL(fileURLWithPath: dir), fromRound: fromRound, rounds: rounds,
                                           options: runOptions.options, communicator: c, log: log), rank: c.rank)
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a campaign's rounds and what the daemon is doing (works while it runs).")

    @Argument(help: "Campaign directory.")
    var dir: String
    @Flag(help: "One JSON object (key committed_rounds, per-round metrics under rounds).")
    var json = false

    func run() throws {
        print(try CampaignCommands.status(dir: URL(fileURLWithPath: dir), json: json), terminator: "")
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-run a round's update offline from the previous checkpoint and the round's buffer.",
        discussion: """
            Without --config, the replay must reproduce the round's weights and optimizer state bit for bit \
            (PPO rounds: also the value model and its optimizer state, and the advantages recomputed from \
            the buffer): it prints the recorded and replayed SHA-256 sums and exits 0 only if they are \
            identical. With --config OVERRIDE.yaml (an `algorithm:` section: another beta, loss_type or \
            learning_rate; for PPO also cliprange, lam, gamma, vf_coef…) it writes a counterfactual \
            checkpoint and metrics.json to --out. The round's parent must still have its full state (see \
            `retention` in docs/config.md; the refusal names the nearest replayable round), the round's \
            buffer must be its own (its header's round and policy), and the inputs pinned at `start` unchanged.
            """)

    @Argument(help: "Campaign directory.")
    var dir: String
    @Option(parsing: .unconditional, help: "Round to replay (≥ 1).")
    var round: Int
    @Option(help: "YAML with an `algorithm:` section overriding the campaign's.")
    var config: String?
    @Option(help: "Directory for the replayed checkpoint and metrics.")
    var out: String?
    @Option(help: "Ranks the round ran on (default: its metrics' dist/ranks, else 1). On one process, N ranks are emulated: each rank's gradient shard in turn, summed in rank order.")
    var ranks: Int?
    @OptionGroup var runOptions: CampaignRunArguments

    func validate() throws {
        if let ranks, ranks < 1 { throw ValidationError("--ranks must be ≥ 1 (got \(ranks))") }
        if config != nil && out == nil { throw ValidationError("--config needs --out for the counterfactual checkpoint") }
        if round < 1 { throw ValidationError("--round must be ≥ 1 (got \(round)); round 0 has no update to replay") }
    }

    func run() throws {
        let (c, log) = try campaignRanks()
        let (report, same) = try CampaignCommands.replay(dir: URL(fileURLWithPath: dir), round: round,
                                                         override: config.map { URL(fileURLWithPath: $0) },
                                                         out: out.map { URL(fileURLWithPath: $0) }, options: runOptions.options,
                                                         ranks: ranks, communicator: c, log: log)
        guard c.rank == 0 else { return }
        print(report, terminator: "")
        if config == nil && !same { throw ExitCode.failure }
    }
}
