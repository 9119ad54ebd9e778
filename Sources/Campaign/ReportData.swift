// What `rondo report` reads from a campaign directory: each committed round's metrics.json, the
// resolved config.yaml, and the best and worst samples of one round's rollout buffer.

import Foundation
import Model
import Rollouts
import Yams

/// One campaign as the report shows it.
public struct ReportRun: Sendable {
    /// Shown in legends (the directory's name, made unique among compared runs).
    public var name: String
    public var directory: URL
    /// Each committed round's metrics, ascending by round.
    public var rows: [[String: JSONValue]]
    /// config.yaml as written by `rondo start`.
    public var configText: String
    /// The config's algorithm.type and labeller.type ("dpo", "verifier", "reward_model", …).
    public var algorithm: String?
    public var labeller: String?

    public init(name: String, directory: URL, rows: [[String: JSONValue]], configText: String,
                algorithm: String? = nil, labeller: String? = nil) {
        self.name = name; self.directory = directory; self.rows = rows; self.configText = configText
        self.algorithm = algorithm; self.labeller = labeller
    }

    /// The rounds that have a number for `key`, with its value (nil where the round lacks it or it is
    /// null, NaN or infinite).
    public func points(_ key: String) -> [(round: Int, value: Double?)] {
        rows.compactMap { row in
            guard let r = row["round"]?.int else { return nil }
            return (r, row[key]?.double.flatMap { $0.isFinite ? $0 : nil })
        }
    }

    /// Rounds whose metrics list alarms, with the alarm texts.
    public var alarms: [(round: Int, messages: [String])] {
        rows.compactMap { row in
            guard let r = row["round"]?.int, let a = row["alarms"]?.array, !a.isEmpty else { return nil }
            return (r, a.map { $0.string ?? "\($0)" })
        }
    }

    /// Loads a campaign directory (one that `rondo start` created).
    public static func load(_ dir: URL, name: String? = nil) throws -> ReportRun {
        let store = CampaignStore(root: dir)
        guard let text = try? String(contentsOf: store.configURL, encoding: .utf8) else {
            throw CampaignError("\(store.root.path): not a campaign directory (no readable config.yaml); pass the directory given to `rondo start --dir`")
        }
        var rows: [[String: JSONValue]] = []
        for r in try store.committedRounds() {
            let url = store.roundURL(r).appendingPathComponent("metrics.json")
            do {
                var row = try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: url))
                if row["round"]?.int == nil { row["round"] = .number(Double(r)) }
                rows.append(row)
            } catch {
                throw CampaignError("\(url.path): not a JSON object of metrics (\(error.localizedDescription)); the round directory is damaged — restore it or move it to archive/")
            }
        }
        let yaml = (try? Yams.load(yaml: text)) as? [String: Any]
        // The config's defaults when the keys are absent (CampaignConfig: dpo, verifier).
        let algorithm = (yaml?["algorithm"] as? [String: Any])?["type"] as? String ?? AlgorithmKind.dpo.rawValue
        let labeller = (yaml?["labeller"] as? [String: Any])?["type"] as? String ?? LabellerKind.verifier.rawValue
        return ReportRun(name: name ?? store.root.lastPathComponent, directory: store.root, rows: rows, configText: text,
                         algorithm: algorithm, labeller: labeller)
    }
}

/// One sample as the report lists it.
public struct ReportSample: Sendable, Equatable {
    public var id: Int
    public var promptID: String?
    public var prompt: String
    public var response: String
    public var score: Double
    public var finishReason: String
}

/// The best and worst scored samples of one round's buffer.
public struct ReportSamples: Sendable {
    public var round: Int
    public var count: Int
    public var scored: Int
    public var meanScore: Double
    /// Highest scores first (ties: lower sample id first).
    public var best: [ReportSample]
    /// Lowest scores first (ties: lower sample id first).
    public var worst: [ReportSample]

    /// Streams round `round`'s buffer, keeping the `k` best and `k` worst samples by label score.
    public static func read(_ dir: URL, round: Int, k: Int) throws -> ReportSamples {
        let url = CampaignStore(root: dir).roundURL(round).appendingPathComponent("rollouts.jsonl.zst")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CampaignError("\(url.path): round \(round) has no rollout buffer (round 0 only evaluates the starting policy); choose a round ≥ 1")
        }
        var out = ReportSamples(round: round, count: 0, scored: 0, meanScore: .nan, best: [], worst: [])
        var sum = 0.0
        try BufferReader(url: url).read { item in
            guard case .sample(let s) = item else { return }
            out.count += 1
            guard let score = s.label?.score, score.isFinite else { return }
            out.scored += 1
            sum += Double(score)
            let sample = ReportSample(id: s.id, promptID: s.promptID, prompt: s.prompt ?? "", response: s.response ?? "",
                                      score: Double(score), finishReason: s.finishReason)
            // Samples arrive in id order, so a strict comparison keeps the lower id first among ties.
            keep(&out.best, sample, k: k) { $0.score > $1.score }
            keep(&out.worst, sample, k: k) { $0.score < $1.score }
        }
        if out.scored > 0 { out.meanScore = sum / Double(out.scored) }
        return out
    }

    /// Inserts `s` into `list` (ordered by `before`, at most `k` long) if it ranks among the first k.
    static func keep(_ list: inout [ReportSample], _ s: ReportSample, k: Int, _ before: (ReportSample, ReportSample) -> Bool) {
        let at = list.firstIndex { before(s, $0) } ?? list.count
        guard at < k else { return }
        list.insert(s, at: at)
        if list.count > k { list.removeLast() }
    }
}
