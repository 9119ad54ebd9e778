// The report's charts: which metric keys each one plots (DPO and PPO campaigns record different
// keys; a chart draws whichever its runs have and says which it found none of), rendered as inline
// SVG with a legend. One run: one colour per series. Several runs (--compare): one colour per run,
// one dash pattern per series.

import Foundation

/// One curve of a chart: a metrics key and how the legend names it.
public struct ReportSeries: Sendable {
    public var key: String
    public var label: String
    /// The algorithm that records the key (nil: every algorithm); its absence is not noted otherwise.
    public var algorithm: AlgorithmKind?
    public init(_ key: String, _ label: String, only algorithm: AlgorithmKind? = nil) {
        self.key = key; self.label = label; self.algorithm = algorithm
    }
}

/// A line chart of per-round metrics.
public struct ReportChart: Sendable {
    public var title: String
    public var series: [ReportSeries]
    /// Put 0 inside the y domain (counts, accuracies).
    public var includeZero = false

    /// The charts of a report; the reward chart names its labeller (a reward model's score is a proxy,
    /// the verifier's accuracy the gold measure).
    public static func standard(labeller: String?) -> [ReportChart] {
        let proxy = labeller == LabellerKind.rewardModel.rawValue
        return standardCharts(labeller: labeller, proxy: proxy) + (proxy ? rewardModelCharts : [])
    }

    /// A reward-model campaign's: proxy vs gold scores of the gold-labelled samples and the held-out
    /// gold pair accuracy around each refresh (`labeller.refresh`; a frozen model records neither).
    static let rewardModelCharts = [
        ReportChart(title: "Reward model vs gold on the refresh samples (proxy before the refresh)", series: [
            ReportSeries("rm/proxy_mean", "proxy (reward model) mean"), ReportSeries("rm/gold_mean", "gold mean"),
            ReportSeries("rm/gap", "gap (proxy − gold)"),
        ]),
        ReportChart(title: "Reward model: held-out gold pair accuracy", series: [
            ReportSeries("rm/gold_pair_accuracy_before", "before the refresh"),
            ReportSeries("rm/gold_pair_accuracy_after", "after the refresh"),
        ], includeZero: true),
    ]

    static func standardCharts(labeller: String?, proxy: Bool) -> [ReportChart] {
        [
            ReportChart(title: "Held-out accuracy (gold: verifier)", series: [ReportSeries("eval/accuracy", "eval accuracy")],
                        includeZero: true),
            ReportChart(title: proxy ? "Reward (proxy: the reward model)" : "Reward (\(labeller ?? "labeller"))", series: [
                ReportSeries("eval/reward_mean", "eval reward, greedy"), ReportSeries("rollout/score_mean", "rollout mean score"),
                ReportSeries("objective/rlhf_reward", "PPO score − KL penalty", only: .ppo),
            ]),
            ReportChart(title: "KL to the reference (nats per response)", series: [
                ReportSeries("eval/kl_to_reference", "eval KL"), ReportSeries("objective/kl", "PPO rollout KL", only: .ppo),
            ], includeZero: true),
            ReportChart(title: "Mean response length (tokens)", series: [
                ReportSeries("eval/length_mean", "eval, greedy"), ReportSeries("rollout/length_mean", "rollouts"),
            ]),
            ReportChart(title: "distinct-2", series: [
                ReportSeries("eval/distinct_2", "eval, greedy"), ReportSeries("rollout/distinct_2", "rollouts"),
            ], includeZero: true),
            ReportChart(title: "Loss", series: [
                ReportSeries("loss", "loss"), ReportSeries("nll_loss", "NLL term (RPO)", only: .dpo),
                ReportSeries("loss/policy_avg", "PPO policy loss", only: .ppo), ReportSeries("loss/value_avg", "PPO value loss", only: .ppo),
            ]),
            ReportChart(title: "Training examples per round", series: [
                ReportSeries("train/pairs", "DPO pairs", only: .dpo), ReportSeries("train/samples", "PPO samples", only: .ppo),
            ], includeZero: true),
        ]
    }

    /// The series that some run has a number for, in declaration order.
    func present(in runs: [ReportRun]) -> [ReportSeries] {
        series.filter { s in runs.contains { run in run.points(s.key).contains { $0.value != nil } } }
    }

    /// The SVG frame: rounds of all runs on x, every drawn value on y.
    func frame(_ runs: [ReportRun], _ shown: [ReportSeries]) -> ReportFrame {
        let rounds = runs.flatMap { $0.rows.compactMap { $0["round"]?.int } }
        let values = runs.flatMap { run in shown.flatMap { run.points($0.key).compactMap(\.value) } }
        return ReportFrame(x: .rounds(rounds.min() ?? 0, rounds.max() ?? 0), y: .nice(values, includeZero: includeZero))
    }

    /// The chart as HTML: a heading, the SVG and its legend, or a note when no run has any of its keys.
    func html(_ runs: [ReportRun]) -> String {
        let shown = present(in: runs)
        var out = "<section class=\"chart\"><h3>\(escapeHTML(title))</h3>"
        guard !shown.isEmpty else {
            let keys = series.map(\.key).joined(separator: ", ")
            return out + "<p class=\"note\">Not drawn: no round records \(escapeHTML(keys)).</p></section>"
        }
        let f = frame(runs, shown)
        var svg = "<svg viewBox=\"0 0 \(coord(f.width)) \(coord(f.height))\" role=\"img\" aria-label=\"\(escapeHTML(title))\">"
        svg += ReportSVG.axes(f, xLabel: "round")
        for (ri, run) in runs.enumerated() {
            for a in run.alarms { svg += ReportSVG.alarmMark(round: a.round, messages: a.messages, color: style(ri, 0, runs.count).color, f) }
        }
        var legend: [String] = []
        for (ri, run) in runs.enumerated() {
            let alarmRounds = Set(run.alarms.map(\.round))
            for (si, s) in shown.enumerated() {
                let points = run.points(s.key)
                guard points.contains(where: { $0.value != nil }) else { continue }
                let st = style(ri, si, runs.count)
                let label = runs.count > 1 ? "\(run.name): \(s.label)" : s.label
                svg += "<path class=\"series\" data-key=\"\(escapeHTML(s.key))\" data-run=\"\(escapeHTML(run.name))\" "
                    + "d=\"\(ReportSVG.linePath(points, f))\" stroke=\"\(st.color)\"\(st.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>"
                svg += ReportSVG.markers(points, alarms: alarmRounds, color: st.color, label: label, f)
                legend.append(legendKey(label, st))
            }
        }
        out += svg + "</svg><div class=\"legend\">" + legend.joined() + "</div>"
        // Keys of an algorithm none of the runs uses are expected to be absent.
        let algorithms = Set(runs.compactMap(\.algorithm))
        let missing = series.filter { s in !shown.contains { $0.key == s.key } && s.algorithm.map { algorithms.contains($0.rawValue) } ?? true }
            .map(\.key)
        if !missing.isEmpty {
            out += "<p class=\"note\">Not recorded by these runs: \(escapeHTML(missing.joined(separator: ", "))).</p>"
        }
        return out + "</section>"
    }
}

/// Okabe–Ito colours (distinguishable with colour-blindness), then black.
let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#000000"]
let dashes: [String?] = [nil, "6 3", "2 3", "8 3 2 3"]

/// Colour per series for one run; colour per run and dash per series when comparing.
func style(_ run: Int, _ series: Int, _ runs: Int) -> (color: String, dash: String?) {
    runs > 1 ? (palette[run % palette.count], dashes[series % dashes.count]) : (palette[series % palette.count], nil)
}

func legendKey(_ label: String, _ st: (color: String, dash: String?)) -> String {
    "<span class=\"key\"><svg width=\"26\" height=\"10\" aria-hidden=\"true\"><line x1=\"1\" y1=\"5\" x2=\"25\" y2=\"5\" "
        + "stroke=\"\(st.color)\" stroke-width=\"2\"\(st.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/></svg>"
        + "\(escapeHTML(label))</span>"
}
