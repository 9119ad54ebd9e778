// `rondo report RUN [--out FILE.html] [--compare RUN2 …] [--round N]`, and the report the daemon
// rewrites after every committed round (RUN/report.html, atomically, reloading itself in a browser).

import Foundation
import Model

public enum CampaignReport {
    /// Where the daemon keeps a campaign's report.
    public static func defaultURL(_ dir: URL) -> URL { CampaignStore(root: dir).root.appendingPathComponent("report.html") }

    /// The report of `dir`, with `compare`d campaigns overlaid on the same axes.
    public static func html(dir: URL, compare: [URL] = [], options: ReportOptions = ReportOptions()) throws -> String {
        let dirs = [dir] + compare
        let names = uniqueNames(dirs.map { CampaignStore(root: $0).root })
        let runs = try zip(dirs, names).map { try ReportRun.load($0, name: $1) }
        if let n = options.round, !runs[0].rows.contains(where: { $0["round"]?.int == n }) {
            throw CampaignError("--round \(n): \(runs[0].directory.path) has no committed round \(n); `rondo status \(runs[0].directory.path)` lists the rounds")
        }
        var samples: [Result<ReportSamples, CampaignError>?] = []
        for (i, run) in runs.enumerated() {
            guard let r = options.round ?? latestBufferedRound(run) else { samples.append(nil); continue }
            do {
                samples.append(.success(try ReportSamples.read(run.directory, round: r, k: options.samples)))
            } catch {
                // The round asked for must be readable; otherwise (e.g. a damaged buffer) the page says why
                // the samples are missing: the metrics still make a report.
                if i == 0 && options.round != nil { throw error }
                samples.append(.failure(error as? CampaignError ?? CampaignError("\(error)")))
            }
        }
        return ReportHTML.page(runs, samples: samples, options: options)
    }

    /// Writes the report atomically to `out` (default RUN/report.html) and returns where.
    @discardableResult
    public static func write(dir: URL, compare: [URL] = [], out: URL? = nil, options: ReportOptions = ReportOptions()) throws -> URL {
        let target = out ?? defaultURL(dir)
        let page = try html(dir: dir, compare: compare, options: options)
        try AtomicFile.write(Data(page.utf8), to: target)
        return target
    }

    /// The newest committed round ≥ 1 that still has its rollout buffer.
    static func latestBufferedRound(_ run: ReportRun) -> Int? {
        let store = CampaignStore(root: run.directory)
        return run.rows.compactMap { $0["round"]?.int }.filter { $0 >= 1 }.reversed().first { r in
            FileManager.default.fileExists(atPath: store.roundURL(r).appendingPathComponent("rollouts.jsonl.zst").path)
        }
    }

    /// Directory names, with parent directories added until they differ.
    static func uniqueNames(_ dirs: [URL]) -> [String] {
        var depth = 1
        while true {
            let names = dirs.map { d in d.pathComponents.suffix(depth).joined(separator: "/") }
            if Set(names).count == names.count || depth >= (dirs.map(\.pathComponents.count).max() ?? 1) { return names }
            depth += 1
        }
    }
}

extension CampaignReport {
    /// Removes the temporary files of report writes whose process is gone (a kill -9 mid-write leaves
    /// AtomicFile's `.report.html.tmp-PID-…`); returns their names.
    @discardableResult
    public static func removeStaleTemporaries(in dir: URL) -> [String] {
        let fm = FileManager.default
        let prefix = "." + defaultURL(dir).lastPathComponent + ".tmp-"
        let names = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { name in
            guard name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }) else { return false }
            return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
        }
        for n in names { try? fm.removeItem(at: dir.appendingPathComponent(n)) }
        return names
    }
}

extension Campaign {
    /// Rewrites RUN/report.html after a commit. A failure is logged, never fatal: the round is committed.
    func writeReport() {
        CampaignReport.removeStaleTemporaries(in: store.root)
        do { try CampaignReport.write(dir: store.root, options: ReportOptions(refreshSeconds: 30)) } catch {
            log("report: not written (\(error)); `rondo report \(store.root.path)` retries")
        }
    }
}
