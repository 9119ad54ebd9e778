// The reward-model dataset of a refresh campaign (`labeller.refresh`): every refresh round stores
// its new gold pairs in rounds/NNNNNN/rm_pairs.jsonl.zst (zstd JSON lines, one pair a line, keys
// sorted: `zstdcat rm_pairs.jsonl.zst | jq`). The dataset a refresh of round r trains on is every
// committed round's pairs up to r, in round order — rebuilt by walking the rounds, so no pair is
// stored twice. The files are small and never pruned by `retention`. Each line is also a valid
// `rondo rm train --data` line (prompt_ids, chosen_ids, rejected_ids).

import Foundation
import Rollouts
import Training

/// One gold pair: two samples of one prompt of a round, the one the gold labeller scored higher chosen.
struct GoldPair: Codable, Equatable {
    var round: Int
    /// The prompt's index among the round's prompts (as in the buffer).
    var promptIndex: Int
    /// Sample ids in the round's buffer.
    var chosenSample: Int, rejectedSample: Int
    var goldChosen: Float, goldRejected: Float
    /// "train" (trained on) or "holdout" (only measured: rm/gold_pair_accuracy_before/after).
    var split: String
    var promptIDs: [Int32], chosenIDs: [Int32], rejectedIDs: [Int32]

    enum CodingKeys: String, CodingKey {
        case round, promptIndex = "prompt_index", chosenSample = "chosen_sample", rejectedSample = "rejected_sample"
        case goldChosen = "gold_chosen", goldRejected = "gold_rejected", split
        case promptIDs = "prompt_ids", chosenIDs = "chosen_ids", rejectedIDs = "rejected_ids"
    }

    var isHoldout: Bool { split == "holdout" }
    /// The pair as `rm train` trains on it: the prompt before each response.
    var example: PairExample { PairExample(chosen: promptIDs + chosenIDs, rejected: promptIDs + rejectedIDs) }
}

enum RewardDataset {
    static let fileName = "rm_pairs.jsonl.zst"

    /// Writes `pairs` into `url` (the round's uncommitted directory; fsynced by the writer).
    static func write(_ pairs: [GoldPair], to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let w = try ZstdFileWriter(path: url.path)
        for p in pairs {
            var line = try enc.encode(p)
            line.append(UInt8(ascii: "\n"))
            try line.withUnsafeBytes { try w.write($0) }
        }
        try w.finish()
    }

    /// Reads the pairs of one file; errors name the file and line.
    static func read(_ url: URL) throws -> [GoldPair] {
        let reader = try ZstdFileReader(path: url.path)
        var bytes = Data()
        while try reader.next({ bytes.append(contentsOf: $0) }) {}
        let dec = JSONDecoder()
        var out: [GoldPair] = []
        for (i, line) in bytes.split(separator: UInt8(ascii: "\n")).enumerated() {
            do { out.append(try dec.decode(GoldPair.self, from: Data(line))) } catch {
                throw CampaignError("\(url.path):\(i + 1): not a gold pair (\(error)); the reward-model dataset is damaged — restore the round from a copy")
            }
        }
        return out
    }

    /// Every committed round's pairs up to and including round `last`, in round order.
    static func pairs(through last: Int, store: CampaignStore) throws -> [GoldPair] {
        var out: [GoldPair] = []
        for r in try store.committedRounds() where r <= last {
            let url = store.roundURL(r).appendingPathComponent(fileName)
            if FileManager.default.fileExists(atPath: url.path) { out += try read(url) }
        }
        return out
    }
}
