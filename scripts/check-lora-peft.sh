#!/usr/bin/env bash
# Acceptance check that a LoRA adapter written by Rondo loads in Hugging Face peft and gives the
# same outputs: trains a small adapter (rsLoRA, r 4, all seven projections, a few SFT steps) on the
# oracle policy, scores data/examples/logprobs.jsonl with `rondo logprobs --adapter`, merges it
# with `rondo merge`, and runs Tests/Fixtures/lora/check_peft.py (peft's load, log-probs, logits
# and merge_and_unload against Rondo's); then the same for a reward-model adapter (`rondo rm train
# --lora-r`, with its score head) through Tests/Fixtures/lora/check_peft_rm.py.
#
# Needs a Python with peft, transformers>=5 and torch, e.g.
#   pip install peft "transformers>=5" torch --extra-index-url https://download.pytorch.org/whl/cpu
# PYTHON selects the interpreter (default python3). Not run by CI (torch is too heavy for it); the
# reverse direction (adapters written by peft load in Rondo) is covered by `swift test`
# (LoRAOracleTests, LoRAFormatTests).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
swift build --product rondo
RONDO=$(swift build --show-bin-path)/rondo
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
BASE=Tests/Fixtures/oracle/policy

# Training data: the example responses as completions.
jq -c '{prompt_ids, completion_ids: .response_ids}' data/examples/logprobs.jsonl > "$OUT/sft.jsonl"
"$RONDO" sft --model "$BASE" --data "$OUT/sft.jsonl" --out "$OUT/adapter" --lora-r 4 --lora-alpha 8 --use-rslora \
    --target-modules all-linear --lr 5e-2 --epochs 4 --batch-size 2 --threads 1
"$RONDO" logprobs --model "$BASE" --adapter "$OUT/adapter" --input data/examples/logprobs.jsonl --output "$OUT/lp.jsonl" --threads 1
"$RONDO" merge --base "$BASE" --adapter "$OUT/adapter" --out "$OUT/merged"
"$PYTHON" Tests/Fixtures/lora/check_peft.py "$BASE" "$OUT/adapter" "$OUT/lp.jsonl" "$OUT/merged"
echo "check-lora-peft: the Rondo adapter loads in peft and matches"

# A reward-model adapter (`rm train --lora-r`, PEFT's SEQ_CLS task: LoRA + the trained score head)
# on the same base, which gets a fresh score head: 32 preference pairs whose chosen continuation
# follows a rule of the prompt and whose rejected one is random; peft must load it and give the
# loss and mean rewards `rm train --eval-only --adapter` prints, and `rondo merge` peft's scores.
"$PYTHON" - "$OUT/pairs.jsonl" <<'PY'
import json, random, sys
rng = random.Random(5)
with open(sys.argv[1], "w") as f:
    for _ in range(32):
        p = [rng.randrange(3, 320) for _ in range(4)]
        f.write(json.dumps({"chosen_ids": p + [10 + x % 50 for x in p],
                            "rejected_ids": p + [rng.randrange(3, 320) for _ in range(4)]}) + "\n")
PY
"$RONDO" rm train --model "$BASE" --data "$OUT/pairs.jsonl" --out "$OUT/rm" --lora-r 4 --lora-alpha 8 \
    --target-modules all-linear --lr 2e-2 --epochs 3 --batch-size 8 --threads 1
"$RONDO" rm train --model "$BASE" --data "$OUT/pairs.jsonl" --adapter "$OUT/rm" --eval-only --threads 1 > "$OUT/rm-eval.json"
"$RONDO" merge --base "$BASE" --adapter "$OUT/rm" --out "$OUT/rm-merged"
"$PYTHON" Tests/Fixtures/lora/check_peft_rm.py "$BASE" "$OUT/rm" "$OUT/pairs.jsonl" "$OUT/rm-eval.json" "$OUT/rm-merged"
echo "check-lora-peft: the Rondo reward-model adapter loads in peft and scores the same"
