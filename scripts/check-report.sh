#!/usr/bin/env bash
# Renders `rondo report` pages in a real browser (headless Chromium) and fails when the browser logs
# any console message (a malformed SVG path, a blocked resource, a script error: the report has no
# scripts, so every console line is a fault), when the page asks for anything over the network, when
# its DOM lacks the charts, or when the screenshot is blank.
#
#   scripts/check-report.sh                 builds rondo, runs a 2-round DPO and a 1-round PPO campaign
#                                           on the starter policy, and checks their reports (one and --compare)
#   scripts/check-report.sh A.html B.html   checks existing reports
#
# Needs Debian's chromium (`apt-get install -y chromium`) and python3. CHROMIUM selects the binary.
# KEEP=1 keeps the work directory (screenshots: *.png). Not run by CI (Chromium is ~300 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM=${CHROMIUM:-chromium}
command -v "$CHROMIUM" >/dev/null || { echo "check-report: $CHROMIUM not found; apt-get install -y chromium" >&2; exit 2; }
WORK=$(mktemp -d)
[ "${KEEP:-}" = 1 ] && echo "check-report: work directory $WORK" || trap 'rm -rf "$WORK"' EXIT

pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
    swift build --product rondo >&2
    RONDO=$(swift build --show-bin-path)/rondo
    for algo in dpo ppo; do
        if [ $algo = dpo ]; then a="{beta: 0.1, rpo_alpha: 1.0, epochs: 1, batch_size: 8, learning_rate: 3.0e-4}"; r=2
        else a="{type: ppo, epochs: 2, batch_size: 16, learning_rate: 1.0e-4}"; r=1; fi
        cat > "$WORK/$algo.yaml" <<EOF
policy: $PWD/policies/starter
prompts: {train: $PWD/data/arithmetic/prompts.jsonl, eval: $PWD/data/arithmetic/eval.jsonl, per_round: 12, eval_limit: 16}
sampling: {n: 4, max_new_tokens: 4, batch_size: 16}
algorithm: $a
rounds: $r
seed: 7
threads: 2
EOF
        "$RONDO" start "$WORK/$algo.yaml" --dir "$WORK/$algo" 2>"$WORK/$algo.log"
    done
    # The daemon's own report, and a comparison written by `rondo report`.
    pages=("$WORK/dpo/report.html" "$("$RONDO" report "$WORK/dpo" --compare "$WORK/ppo" --out "$WORK/compare.html")")
fi

fail=0
i=0
for page in "${pages[@]}"; do
    i=$((i + 1)) bad=0
    [ -s "$page" ] || { echo "check-report: $page is missing or empty" >&2; fail=1; continue; }
    url="file://$(realpath "$page")"
    name="$i-$(basename "$page" .html)"
    if grep -Eq '<script|(src|href)="(https?:)?//' "$page"; then
        echo "check-report: $page has a script or loads something from the network" >&2; bad=1
    fi
    flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --enable-logging=stderr --v=0)
    timeout 120 "$CHROMIUM" "${flags[@]}" --dump-dom "$url" >"$WORK/$name.dom" 2>"$WORK/$name.err" || true
    if grep -q 'CONSOLE' "$WORK/$name.err"; then
        echo "check-report: $page: console messages:" >&2; grep 'CONSOLE' "$WORK/$name.err" >&2; bad=1
    fi
    charts=$(grep -o '<svg viewBox' "$WORK/$name.dom" | wc -l)
    series=$(grep -o 'class="series"' "$WORK/$name.dom" | wc -l)
    if [ "$charts" -lt 4 ] || [ "$series" -lt 4 ] || ! grep -q '<h2>Per round</h2>' "$WORK/$name.dom"; then
        echo "check-report: $page: the rendered DOM has $charts charts and $series curves (expected ≥ 4 of each)" >&2; bad=1
    fi
    timeout 120 "$CHROMIUM" "${flags[@]}" --window-size=1100,2400 --screenshot="$WORK/$name.png" "$url" \
        >/dev/null 2>>"$WORK/$name.err" || true
    if ! python3 - "$WORK/$name.png" <<'EOF'
import struct, sys, zlib
# A PNG's pixels without third-party modules: inflate the IDAT stream and undo each row's filter.
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6), f"unexpected PNG format (depth {depth}, colour type {ctype})"
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, colours, inked = bytearray(stride), set(), 0
for y in range(h):
    f, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = row[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: row[i] = (row[i] + a) & 255
        elif f == 2: row[i] = (row[i] + b) & 255
        elif f == 3: row[i] = (row[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp * 4):
        px = bytes(row[x:x + 3])
        colours.add(px)
        inked += px != b"\xff\xff\xff"
    prev = row
share = inked / (h * w / 4)
print(f"{sys.argv[1]}: {w}x{h}, {len(colours)} colours, {share:.1%} of pixels not white")
sys.exit(0 if len(colours) >= 8 and share > 0.02 else 1)
EOF
    then echo "check-report: $page: the screenshot is blank" >&2; bad=1; fi
    if [ $bad = 0 ]; then echo "check-report: $page renders in Chromium without console messages ($charts charts, $series curves)"
    else fail=1; fi
done
exit $fail
