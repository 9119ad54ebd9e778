// `rondo report`: a campaign's self-contained HTML report (charts per round, alarms, best and worst
// samples, the resolved config), optionally overlaying other campaigns.

import ArgumentParser
import Campaign
import Foundation

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a campaign's report: one self-contained HTML file with per-round charts.",
        discussion: """
            Charts per round: held-out accuracy, reward, KL to the reference, mean length, distinct-2, loss, \
            pairs (PPO: samples) and the time of each phase, with alarms marked; the best and worst samples \
            of the latest round (or --round N) with their scores; the resolved config. Inline SVG and CSS, \
            no scripts: it opens offline and prints. --compare overlays other campaigns on the same axes \
            (e.g. a DPO and a PPO run). The daemon rewrites RUN/report.html after every committed round.
            """)

    @Argument(help: "Campaign directory.")
    var dir: String
    @Option(help: "Where to write the HTML (default: RUN/report.html).")
    var out: String?
    @Option(parsing: .upToNextOption, help: "Other campaign directories to overlay.")
    var compare: [String] = []
    @Option(parsing: .unconditional, help: "Round whose best and worst samples are listed (default: the latest).")
    var round: Int?
    @Option(help: "How many best and how many worst samples to list.")
    var samples: Int = 5

    func validate() throws {
        if let round, round < 1 { throw ValidationError("--round must be ≥ 1 (got \(round)); round 0 has no samples") }
        if samples < 1 { throw ValidationError("--samples must be ≥ 1 (got \(samples))") }
    }

    func run() throws {
        let url = try CampaignReport.write(dir: URL(fileURLWithPath: dir), compare: compare.map { URL(fileURLWithPath: $0) },
                                           out: out.map { URL(fileURLWithPath: $0) },
                                           options: ReportOptions(round: round, samples: samples))
        print(url.path)
    }
}
