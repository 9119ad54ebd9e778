// The report page: one self-contained HTML file (inline CSS and SVG, no scripts, nothing fetched)
// with a summary of each run, the per-round charts, the alarms, the best and worst samples of a
// round, and each run's resolved config. Prints on A4 (one chart per row, no page break inside).

import Foundation

/// What a report shows besides the metrics.
public struct ReportOptions: Sendable {
    /// The round whose samples are listed (nil: each run's latest round with a buffer).
    public var round: Int? = nil
    /// How many best and worst samples.
    public var samples = 5
    /// Reload the page every N seconds (the daemon's report, kept open while the campaign runs).
    public var refreshSeconds: Int? = nil
    public init(round: Int? = nil, samples: Int = 5, refreshSeconds: Int? = nil) {
        self.round = round; self.samples = samples; self.refreshSeconds = refreshSeconds
    }
}

enum ReportHTML {
    static func page(_ runs: [ReportRun], samples: [Result<ReportSamples, CampaignError>?], options: ReportOptions,
                     generated: Date = Date()) -> String {
        let title = "Rondo report: " + runs.map(\.name).joined(separator: " vs ")
        var h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        if let s = options.refreshSeconds { h += "<meta http-equiv=\"refresh\" content=\"\(s)\">" }
        h += "<title>\(escapeHTML(title))</title><style>\(css)</style></head><body>\n"
        h += "<h1>\(escapeHTML(title))</h1>\n"
        h += "<p class=\"meta\">Generated \(ISO8601DateFormatter().string(from: generated)) by <code>rondo report</code>. "
        h += "Hover a point for its value; red marks are alarms.</p>\n"
        h += summary(runs) + "\n"
        h += "<h2>Per round</h2>\n<div class=\"charts\">\n"
        for chart in ReportChart.standard(labeller: runs.first?.labeller) { h += chart.html(runs) + "\n" }
        h += ReportTimeChart.html(runs) + "\n</div>\n"
        h += alarms(runs) + "\n"
        for (run, s) in zip(runs, samples) { h += samplesSection(run, s, multiple: runs.count > 1) + "\n" }
        for run in runs {
            h += "<h2>Config\(runs.count > 1 ? ": " + escapeHTML(run.name) : "")</h2>"
            h += "<p class=\"meta\">\(escapeHTML(run.directory.appendingPathComponent("config.yaml").path))</p>"
            h += "<pre class=\"config\">\(escapeHTML(run.configText))</pre>\n"
        }
        return h + "</body></html>\n"
    }

    /// A row per run: where it is, what it runs, and how far it got.
    static func summary(_ runs: [ReportRun]) -> String {
        var t = "<table class=\"summary\"><tr><th>run</th><th>algorithm</th><th>labeller</th><th>rounds</th>"
        t += "<th>eval accuracy, first → last</th><th>eval KL, last</th><th>alarms</th><th>directory</th></tr>"
        for (i, run) in runs.enumerated() {
            let acc = run.points("eval/accuracy").compactMap(\.value)
            let kl = run.points("eval/kl_to_reference").compactMap(\.value)
            let last = run.rows.last?["round"]?.int
            t += "<tr><td><span class=\"swatch\" style=\"background:\(palette[i % palette.count])\"></span>\(escapeHTML(run.name))</td>"
            t += "<td>\(escapeHTML(run.algorithm ?? "–"))</td><td>\(escapeHTML(run.labeller ?? "–"))</td>"
            t += "<td>\(last.map { "0–\($0)" } ?? "none committed")</td>"
            t += "<td>\(acc.first.map { "\(fmtValue($0)) → \(fmtValue(acc.last!))" } ?? "–")</td>"
            t += "<td>\(kl.last.map(fmtValue) ?? "–")</td><td>\(run.alarms.count)</td>"
            t += "<td><code>\(escapeHTML(run.directory.path))</code></td></tr>"
        }
        return t + "</table>"
    }

    static func alarms(_ runs: [ReportRun]) -> String {
        let all = runs.flatMap { run in run.alarms.map { (run.name, $0.round, $0.messages) } }
        var h = "<h2>Alarms</h2>"
        guard !all.isEmpty else { return h + "<p class=\"note\">No alarm in any committed round.</p>" }
        h += "<ul class=\"alarms\">"
        for (name, r, ms) in all {
            h += "<li>\(runs.count > 1 ? escapeHTML(name) + ", " : "")round \(r): \(escapeHTML(ms.joined(separator: "; ")))</li>"
        }
        return h + "</ul>"
    }

    static func samplesSection(_ run: ReportRun, _ s: Result<ReportSamples, CampaignError>?, multiple: Bool) -> String {
        var h = "<h2>Samples\(multiple ? ": " + escapeHTML(run.name) : "")</h2>"
        switch s {
        case nil:
            return h + "<p class=\"note\">No round with a rollout buffer yet (round 0 evaluates the starting policy only).</p>"
        case .failure(let e):
            return h + "<p class=\"note\">Not shown: \(escapeHTML(e.description))</p>"
        case .success(let s):
            h += "<p class=\"meta\">Round \(s.round): \(s.count) samples, \(s.scored) scored, mean score \(fmtValue(s.meanScore)). "
            h += "Ties keep the lower sample id.</p>"
            h += "<div class=\"samples\"><div><h3>Best</h3>\(table(s.best))</div><div><h3>Worst</h3>\(table(s.worst))</div></div>"
            return h
        }
    }

    static func table(_ list: [ReportSample]) -> String {
        guard !list.isEmpty else { return "<p class=\"note\">No scored sample.</p>" }
        var t = "<table class=\"samples\"><tr><th>score</th><th>sample</th><th>prompt</th><th>response</th><th>finish</th></tr>"
        for s in list {
            t += "<tr><td class=\"num\">\(fmtValue(s.score))</td><td class=\"num\">\(s.id)\(s.promptID.map { "<br><small>\(escapeHTML($0))</small>" } ?? "")</td>"
            t += "<td><pre>\(escapeHTML(clip(s.prompt)))</pre></td><td><pre>\(escapeHTML(clip(s.response)))</pre></td>"
            t += "<td>\(escapeHTML(s.finishReason))</td></tr>"
        }
        return t + "</table>"
    }

    /// Long texts are cut (the buffer has them whole: `rondo inspect`).
    static func clip(_ s: String, _ limit: Int = 1200) -> String {
        s.count <= limit ? s : String(s.prefix(limit)) + " … (\(s.count - limit) more characters; `rondo inspect` shows all)"
    }

    static let css = """
        body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 12px}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #ddd}h3{font-size:14px;margin:4px 0}
        .meta,.note{color:#555;font-size:13px}.note{font-style:italic}
        table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
        td.num{text-align:right;font-variant-numeric:tabular-nums}td small{white-space:nowrap}
        .swatch{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px}
        .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:12px}
        .chart{border:1px solid #e4e4e4;border-radius:4px;padding:6px 8px;break-inside:avoid}
        .chart>svg{width:100%;height:auto;display:block}
        .grid{stroke:#eee}.axis{stroke:#888}.tick{font-size:10px;fill:#555}.label{font-size:11px;fill:#333}
        .series{fill:none;stroke-width:2;stroke-linejoin:round}
        .alarm line{stroke-width:1.2;stroke-dasharray:3 3;opacity:.7}
        .legend{font-size:12px;display:flex;flex-wrap:wrap;gap:4px 14px}.key{white-space:nowrap}.key svg{vertical-align:middle;margin-right:4px}
        .samples{display:grid;grid-template-columns:1fr 1fr;gap:12px}
        table.samples pre{margin:0;white-space:pre-wrap;word-break:break-word;max-width:300px}
        pre.config{background:#f7f7f7;border:1px solid #e4e4e4;padding:8px;white-space:pre-wrap;font-size:12px}
        @media print{body{max-width:none;margin:0}.charts{grid-template-columns:1fr 1fr}.samples{grid-template-columns:1fr}
        h2{break-after:avoid}}
        """
}
