#!/usr/bin/env bash
# Acceptance 3 of issue 20: one LoRA DPO campaign round (r = 16 on all seven projections) on a
# randomly initialised Llama-3.2-1B-shaped model (../shared/bench/configs/B1, 1.24 B parameters),
# with the peak RSS from /usr/bin/time -v and the round checkpoint's size.
#
#   scripts/lora-b1-round.sh [WORK_DIR]      (default /tmp/rondo-lora-b1; needs ~10 GB of disk)
#
# The round is tiny (4 prompts × 2 samples × 16 new tokens, one update step over 4 pairs) because
# only its memory and checkpoint are measured. The random model has no tokenizer, so prompts are
# token ids and the verifier scores every response 0: with `skip_ties: false` best-vs-worst still
# pairs each prompt's two samples, so the update runs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rondo=${RONDO:-$here/.build/release/rondo}
[ -x "$rondo" ] || rondo=$here/.build-release/release/rondo
work=${1:-/tmp/rondo-lora-b1}
config=$here/../shared/bench/configs/B1/config.json
[ -f "$config" ] || config=/work/shared/bench/configs/B1/config.json
mkdir -p "$work"
[ -f "$work/model/model.safetensors" ] || "$rondo" init --config "$config" --out "$work/model" --seed 0
python3 - "$work" <<'PY'
import json, random, sys
work = sys.argv[1]
rng = random.Random(0)
for name, n in (("prompts", 8), ("eval", 2)):
    with open(f"{work}/{name}.jsonl", "w") as f:
        for _ in range(n):
            f.write(json.dumps({"prompt_ids": [1] + [rng.randrange(3, 128256) for _ in range(7)], "answer": "1"}) + "\n")
PY
cat > "$work/campaign.yaml" <<YAML
policy: {base: $work/model, lora: {r: 16, alpha: 32, target_modules: all-linear}}
prompts: {train: $work/prompts.jsonl, eval: $work/eval.jsonl, per_round: 4, eval_limit: 2}
sampling: {n: 2, max_new_tokens: 16, batch_size: 8}
labeller: {type: verifier}
pairs: {min_margin: 0, skip_ties: false, max_per_prompt: 1}
algorithm: {type: dpo, beta: 0.1, epochs: 1, batch_size: 4, learning_rate: 1.0e-4}
rounds: 1
seed: 1
threads: 2
YAML
rm -rf "$work/run"
/usr/bin/time -v "$rondo" start "$work/campaign.yaml" --dir "$work/run" 2> >(tee "$work/time.txt" >&2)
grep -E "Maximum resident set size|Elapsed" "$work/time.txt"
echo "round 1 checkpoint (policy/ + optimizer.safetensors):"
du -cb "$work/run/rounds/000001/policy" "$work/run/rounds/000001/optimizer.safetensors" | tail -1
grep -h peak_rss_mib "$work/run/rounds/00000"*/metrics.json | sed 's/.*"peak_rss_mib": \([0-9.]*\).*/peak_rss_mib (round metrics): \1/'
