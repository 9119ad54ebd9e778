// Retention: every round keeps its policy, buffer, state and metrics, but its full state (the
// optimizer moments, for PPO the value model and its optimizer, for a refresh campaign the reward
// model's optimizer) only when the `retention`
// section says so. A round can be resumed from only with its full state, and replayed only when its
// parent has it (the update starts from the parent's optimizer).
//
// Pruning runs after each commit and when the daemon starts (which finishes a pruning a kill
// interrupted). It unlinks optimizer.safetensors first, so a round is "without full state" from the
// first step on; the files after it are removed by the next pass if a kill lands in between.

import Foundation
import Training

/// `retention:` in the campaign config. Without it every round keeps its full state.
public struct RetentionSection: Codable, Sendable, Equatable {
    /// Keep the full state of the last K committed rounds (≥ 1: the newest round is what resume continues from).
    public var fullStateLast: Int = 1
    /// Also keep it for every M-th round (rounds 0, M, 2M, …); nil = only round 0 and the last K.
    public var fullStateEvery: Int? = nil
    enum CodingKeys: String, CodingKey, CaseIterable { case fullStateLast = "full_state_last", fullStateEvery = "full_state_every" }

    public init(fullStateLast: Int = 1, fullStateEvery: Int? = nil) {
        self.fullStateLast = fullStateLast; self.fullStateEvery = fullStateEvery
    }

    public init(from decoder: Decoder) throws {
        try rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        fullStateLast = try c.value(.fullStateLast, 1)
        fullStateEvery = try c.decodeIfPresent(Int.self, forKey: .fullStateEvery)
    }

    func validate(_ bad: (String, String) -> CampaignError) throws {
        if fullStateLast < 1 { throw bad("retention.full_state_last", "must be ≥ 1 (resume continues from the newest round's full state)") }
        if let m = fullStateEvery, m < 1 { throw bad("retention.full_state_every", "must be ≥ 1 (or omitted)") }
    }

    /// Whether round `r` keeps its full state when `last` is the newest committed round.
    public func keepsFullState(_ r: Int, last: Int) -> Bool {
        r == 0 || r > last - fullStateLast || fullStateEvery.map { r % $0 == 0 } ?? false
    }
}

extension CampaignStore {
    /// Files that make a round's full state, in the order pruning removes them (the first decides):
    /// the policy's optimizer state, then the algorithms' extra state (PPO's value model).
    static let fullStateFiles = [AdamW.fileName] + extraStateFiles

    /// Full-state files beyond the policy's optimizer: the algorithms' and a refresh campaign's
    /// reward-model optimizer state (a round has them when round 0 has them).
    static let extraStateFiles = RoundAlgorithms.stateFiles + [RewardModelState.optimizerFile]

    /// Whether round `r` still has its full state: its optimizer state, and every file of the
    /// algorithm's extra state that round 0 has (e.g. a PPO campaign's value/).
    public func hasFullState(_ r: Int) -> Bool {
        let fm = FileManager.default
        let dir = roundURL(r)
        guard fm.fileExists(atPath: dir.appendingPathComponent(AdamW.fileName).path) else { return false }
        return Self.extraStateFiles.allSatisfy { f in
            !fm.fileExists(atPath: roundURL(0).appendingPathComponent(f).path) || fm.fileExists(atPath: dir.appendingPathComponent(f).path)
        }
    }

    /// Removes the full state of committed rounds `retention` does not keep; returns the rounds pruned.
    @discardableResult
    public func prune(_ retention: RetentionSection?) throws -> [Int] {
        guard let retention else { return [] }
        let committed = try committedRounds()
        guard let last = committed.last else { return [] }
        let fm = FileManager.default
        var pruned: [Int] = []
        for r in committed where !retention.keepsFullState(r, last: last) {
            let dir = roundURL(r)
            let present = Self.fullStateFiles.filter { fm.fileExists(atPath: dir.appendingPathComponent($0).path) }
            guard !present.isEmpty else { continue }
            for name in present {
                do { try fm.removeItem(at: dir.appendingPathComponent(name)) } catch {
                    throw CampaignError("\(dir.path): cannot prune \(name) (\(error.localizedDescription))")
                }
            }
            try fsyncPath(dir.path, directory: true)
            pruned.append(r)
        }
        return pruned
    }

    /// The committed round nearest `r` (the earlier one on a tie) among `candidates`.
    static func nearest(_ r: Int, in candidates: [Int]) -> Int? {
        candidates.min { (abs($0 - r), $0) < (abs($1 - r), $1) }
    }

    /// Refuses to resume from round `r` when its full state was pruned, naming the nearest round that has it.
    public func requireFullState(_ r: Int) throws {
        guard !hasFullState(r) else { return }
        let near = Self.nearest(r, in: try committedRounds().filter(hasFullState))
        throw CampaignError("\(root.path): round \(r) has no full state (its optimizer state was pruned by `retention`), so training cannot continue from it; the nearest round that has it is \(near.map { "\($0): `rondo resume \(root.path) --from-round \($0)`" } ?? "none")")
    }

    /// Refuses to replay round `r` when its parent's full state was pruned, naming the nearest replayable round.
    public func requireReplayable(_ r: Int) throws {
        guard !hasFullState(r - 1) else { return }
        let near = Self.nearest(r, in: try committedRounds().filter { $0 >= 1 && hasFullState($0 - 1) })
        throw CampaignError("\(root.path): round \(r) cannot be replayed: its parent round \(r - 1) has no full state (pruned by `retention`); the nearest replayable round is \(near.map { "\($0): `rondo replay \(root.path) --round \($0)`" } ?? "none")")
    }

    /// Bytes allocated on disk under `url` (as `du` counts them: allocated blocks).
    public static func diskUsage(_ url: URL) -> Int {
        var total = 0
        var st = stat()
        guard lstat(url.path, &st) == 0 else { return 0 }
        total += Int(st.st_blocks) * 512
        guard (st.st_mode & S_IFMT) == S_IFDIR, let items = FileManager.default.enumerator(atPath: url.path) else { return total }
        for case let rel as String in items where lstat(url.appendingPathComponent(rel).path, &st) == 0 {
            total += Int(st.st_blocks) * 512
        }
        return total
    }
}
