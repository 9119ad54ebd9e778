#!/usr/bin/env python3
"""The learning study's tables and its accuracy-against-KL plot, from campaigns' metrics.jsonl.

    scripts/study_frontier.py [--svg OUT.svg] [--rounds 0,5,10] [--deltas] NAME=RUN[,RUN…] …

Each NAME=RUN,RUN,… is one method (e.g. `online DPO=runs/dpo-s1,runs/dpo-s2,runs/dpo-s3`), one
campaign directory per seed. Prints, per method, a Markdown table row: mean ± sd over the seeds of
held-out accuracy (eval/accuracy) at the chosen rounds and of eval/kl_to_reference at the last one.
With --svg it also writes a self-contained SVG: every campaign's path through (KL, accuracy) from
round 0 to its last round, thin, and each method's mean at the last round with ±1 sd bars in both
directions (the DPO paper's reward-against-KL frontier, with accuracy as the reward). Standard library
only; sd is the sample standard deviation (n − 1). --deltas prints one row per campaign instead:
accuracy by round, the last round's gain over round 0 and the lowest point below it.
"""
import argparse
import json
import math
import os
import statistics
import sys

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def load(run):
    """Rounds in order: {round: metrics} from RUN/metrics.jsonl (the last line of a round wins)."""
    path = os.path.join(run, "metrics.jsonl")
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        sys.exit(f"study_frontier: cannot read {path}: {e.strerror}; is {run} a campaign directory?")
    out = {}
    for row in rows:
        if "round" not in row:
            sys.exit(f"study_frontier: {path}: a line without 'round'")
        out[int(row["round"])] = row
    return out


def value(rounds, r, key, run):
    if r not in rounds or key not in rounds[r] or rounds[r][key] is None:
        sys.exit(f"study_frontier: {run}: round {r} has no {key}; did the campaign finish?")
    v = float(rounds[r][key])
    if not math.isfinite(v):
        sys.exit(f"study_frontier: {run}: round {r}: {key} is {v}")
    return v


def mean_sd(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def table(methods, marks):
    last = marks[-1]
    head = ["method", "seeds"] + [f"accuracy r{r}" for r in marks] + [f"KL r{last}"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, runs in methods:
        cells = [name, str(len(runs))]
        for r in marks:
            m, s = mean_sd([value(rs, r, "eval/accuracy", run) for run, rs in runs])
            cells.append(f"{m:.3f} ± {s:.3f}")
        m, s = mean_sd([value(rs, last, "eval/kl_to_reference", run) for run, rs in runs])
        cells.append(f"{m:.3f} ± {s:.3f}")
        print("| " + " | ".join(cells) + " |")


def deltas(methods, last):
    """One row per campaign: accuracy by round, round `last` − round 0 and the lowest − round 0 (points)."""
    print("| config | run | accuracy, rounds 0 → %d | round %d − round 0 | lowest − round 0 |" % (last, last))
    print("|---|---|---|---|---|")
    for name, runs in methods:
        for run, rs in runs:
            acc = [value(rs, r, "eval/accuracy", run) for r in range(last + 1)]
            d = [round((a - acc[0]) * 100, 1) for a in acc]
            low = min(range(len(d)), key=lambda r: (d[r], r))
            print(f"| {name} | {os.path.basename(run.rstrip('/'))} | {' '.join(f'{a:g}' for a in acc)} | {d[-1]:+.1f} "
                  f"| {d[low]:+.1f} (round {low}) |")


def svg(methods, last, out):
    W, H, L, R, T, B = 640, 420, 64, 190, 30, 50
    pts = [(value(rs, r, "eval/kl_to_reference", run), value(rs, r, "eval/accuracy", run))
           for _, runs in methods for run, rs in runs for r in range(last + 1)]
    xmax = max(p[0] for p in pts) * 1.08 or 1.0
    ymax = min(1.0, max(p[1] for p in pts) * 1.1)
    X = lambda x: L + x / xmax * (W - L - R)
    Y = lambda y: H - B - y / ymax * (H - T - B)
    e = []
    e.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             'font-family="sans-serif" font-size="12">')
    e.append(f'<rect width="{W}" height="{H}" fill="white"/>')
    e.append(f'<text x="{L}" y="18" font-size="14">Held-out accuracy against KL to the reference, rounds 0–{last}</text>')
    for i in range(6):
        y = ymax * i / 5
        e.append(f'<line x1="{L}" x2="{W - R}" y1="{Y(y):.1f}" y2="{Y(y):.1f}" stroke="#ddd"/>')
        e.append(f'<text x="{L - 6}" y="{Y(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
        x = xmax * i / 5
        e.append(f'<text x="{X(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:.2f}</text>')
    e.append(f'<line x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}" stroke="black"/>')
    e.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H - B}" stroke="black"/>')
    e.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">eval KL(policy ‖ reference), nats per response</text>')
    e.append(f'<text transform="translate(16 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">eval accuracy</text>')
    for i, (name, runs) in enumerate(methods):
        c = COLOURS[i % len(COLOURS)]
        for run, rs in runs:
            path = " ".join(f"{X(value(rs, r, 'eval/kl_to_reference', run)):.1f},{Y(value(rs, r, 'eval/accuracy', run)):.1f}"
                            for r in range(last + 1))
            e.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-opacity="0.35"/>')
        kx, ks = mean_sd([value(rs, last, "eval/kl_to_reference", run) for run, rs in runs])
        ay, as_ = mean_sd([value(rs, last, "eval/accuracy", run) for run, rs in runs])
        e.append(f'<line x1="{X(max(0, kx - ks)):.1f}" x2="{X(kx + ks):.1f}" y1="{Y(ay):.1f}" y2="{Y(ay):.1f}" stroke="{c}" stroke-width="2"/>')
        e.append(f'<line x1="{X(kx):.1f}" x2="{X(kx):.1f}" y1="{Y(max(0, ay - as_)):.1f}" y2="{Y(ay + as_):.1f}" stroke="{c}" stroke-width="2"/>')
        e.append(f'<circle cx="{X(kx):.1f}" cy="{Y(ay):.1f}" r="5" fill="{c}"/>')
        ly = T + 20 + i * 20
        e.append(f'<circle cx="{W - R + 16}" cy="{ly - 4}" r="5" fill="{c}"/>')
        e.append(f'<text x="{W - R + 26}" y="{ly}">{esc(name)} ({len(runs)} seeds)</text>')
    e.append(f'<text x="{W - R + 10}" y="{T + 30 + len(methods) * 20}" fill="#555">dot: mean at round {last}, ±1 sd</text>')
    e.append(f'<text x="{W - R + 10}" y="{T + 46 + len(methods) * 20}" fill="#555">thin: one seed, rounds 0–{last}</text>')
    e.append("</svg>")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(e) + "\n")
    os.replace(tmp, out)


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--svg", help="write the accuracy-against-KL plot here")
    ap.add_argument("--rounds", default="0,5,10", help="rounds for the accuracy columns; the last is the KL's and the plot's")
    ap.add_argument("--deltas", action="store_true", help="print one row per campaign (gain and lowest dip) instead")
    ap.add_argument("methods", nargs="+", metavar="NAME=RUN[,RUN…]")
    a = ap.parse_args()
    marks = [int(r) for r in a.rounds.split(",")]
    methods = []
    for m in a.methods:
        name, sep, runs = m.partition("=")
        if not sep or not runs:
            sys.exit(f"study_frontier: '{m}' is not NAME=RUN[,RUN…]")
        methods.append((name, [(run, load(run)) for run in runs.split(",")]))
    if a.deltas:
        return deltas(methods, marks[-1])
    table(methods, marks)
    if a.svg:
        svg(methods, marks[-1], a.svg)


if __name__ == "__main__":
    main()
