// `rondo status`: what the daemon is doing (decided by the lock, not by the pid in status.json), a
// table of key metrics per round, and per round whether it still has its full state, whether it can
// be replayed (its parent has full state) and resumed from (it has), and the disk it uses.

import Foundation
import Model
import Yams

extension CampaignCommands {
    /// `rondo status`: the current round and phase, and a table of key metrics per round.
    public static func status(dir: URL, json: Bool) throws -> String {
        let store = CampaignStore(root: dir)
        guard FileManager.default.fileExists(atPath: store.configURL.path) else {
            throw CampaignError("\(dir.path): not a campaign directory (no config.yaml)")
        }
        let committed = try store.committedRounds()
        var rows: [[String: JSONValue]] = []
        for r in committed {
            let m = store.roundURL(r).appendingPathComponent("metrics.json")
            if let v = try? JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: m)) { rows.append(v) }
        }
        var phase: [String: JSONValue] = [:]
        if let s = try? JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: store.statusURL)) { phase = s }
        let holder = CampaignLock.holder(store)
        let disk = committed.map { r -> [String: JSONValue] in
            ["round": .number(Double(r)), "full_state": .bool(store.hasFullState(r)),
             "replayable": .bool(r >= 1 && store.hasFullState(r - 1)), "resumable": .bool(store.hasFullState(r)),
             "disk_bytes": .number(Double(CampaignStore.diskUsage(store.roundURL(r))))]
        }
        let total = CampaignStore.diskUsage(store.root)
        let target = try store.roundsTarget()
        let algorithm = algorithmKind(store)
        let keys = ["eval/accuracy", "eval/reward_mean", "eval/kl_to_reference", "eval/length_mean", "eval/distinct_2", "loss"]
            + RoundAlgorithms.type(of: algorithm).statusColumns
            + (rows.contains { $0["dist/ranks"] != nil } ? ["dist/ranks"] : [])  // rounds that ran on MPI ranks
        if json {
            let obj: [String: JSONValue] = [
                "dir": .string(store.root.path), "committed_rounds": .number(Double(committed.count)),
                "last_round": committed.last.map { .number(Double($0)) } ?? .null,
                "running": .bool(holder != nil), "pid": holder.map { .number(Double($0)) } ?? .null,
                "round": phase["round"] ?? .null, "phase": phase["phase"] ?? .null,
                "progress": holder != nil ? phase["progress"] ?? .null : .null,
                "rounds_target": target.map { .number(Double($0)) } ?? .null,
                "rounds": .array(rows.map { .object($0) }), "retention": .array(disk.map { .object($0) }),
                "disk_bytes": .number(Double(total)),
            ]
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try e.encode(obj), as: UTF8.self) + "\n"
        }
        var out = "campaign  \(store.root.path)\n"
        out += "committed \(committed.count) rounds (last: \(committed.last.map(String.init) ?? "none"))"
        out += target.map { ", target \($0) (resume --rounds)\n" } ?? "\n"
        let ph = phase["phase"]?.string ?? "–", rd = phase["round"]?.int.map(String.init) ?? "–"
        if let holder {
            out += "running   round \(rd), phase \(ph) (pid \(holder >= 0 ? String(holder) : "?"))\n"
            if let p = ProgressSnapshot(phase["progress"]) { out += "progress  \(p.line)\n" }
        } else {
            out += "stopped   (last phase: \(ph) of round \(rd))\n"
        }
        let names = ["round"] + keys.map { $0.replacingOccurrences(of: "eval/", with: "").replacingOccurrences(of: "objective/", with: "").replacingOccurrences(of: "dist/", with: "") }
        out += "\n" + table(names, rows.map { row in
            [row["round"]?.int.map(String.init) ?? "?"] + keys.map { k in row[k]?.double.map { fmt($0) } ?? "–" }
        })
        for row in rows {
            if let alarms = row["alarms"]?.array, !alarms.isEmpty {
                out += "round \(row["round"]?.int ?? -1) alarms: \(alarms.compactMap(\.string).joined(separator: "; "))\n"
            }
        }
        out += "\n" + table(["round", "full state", "replay", "resume", "disk"], disk.map { d in
            [d["round"]?.int.map(String.init) ?? "?", yes(d["full_state"]), yes(d["replayable"]), yes(d["resumable"]),
             mib(d["disk_bytes"]?.int ?? 0)]
        })
        out += "disk      \(mib(total)) in all (\(store.root.path))\n"
        return out
    }

    /// The algorithm config.yaml names (`algorithm.type`, dpo when absent): read leniently, since
    /// status must also describe a campaign whose config no longer parses.
    static func algorithmKind(_ store: CampaignStore) -> AlgorithmKind {
        let text = try? String(contentsOf: store.configURL, encoding: .utf8)
        let top = text.flatMap { try? Yams.load(yaml: $0) } as? [String: Any]
        let type = (top?["algorithm"] as? [String: Any])?["type"] as? String
        return type.flatMap(AlgorithmKind.init(rawValue:)) ?? .dpo
    }

    static func table(_ names: [String], _ rows: [[String]]) -> String {
        let widths = names.map { max(11, $0.count + 2) }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined() + "\n"
        }
        return line(names) + rows.map(line).joined()
    }

    static func yes(_ v: JSONValue?) -> String { v == .bool(true) ? "yes" : "no" }

    static func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
}
