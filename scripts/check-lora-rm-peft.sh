#!/usr/bin/env bash
# Check that a reward-model LoRA adapter written by `rondo rm train --lora-r` loads in Hugging Face
# peft (PEFT's SEQ_CLS task: LoRA weights plus the trained score head) and scores as Rondo does:
# trains a small adapter (r 4, all seven projections) with its score head on the oracle policy (a
# causal LM, which gets a fresh score head), evaluates it with `rondo rm train --eval-only
# --adapter`, merges it with `rondo merge`, and runs Tests/Fixtures/lora/check_peft_rm.py.
#
# Needs a Python with peft, transformers and torch (as scripts/check-lora-peft.sh). PYTHON selects
# the interpreter (default python3). Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
swift build --product rondo
RONDO=$(swift build --show-bin-path)/rondo
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
BASE=Tests/Fixtures/oracle/policy

# 32 preference pairs over the policy's 320-token vocabulary: the chosen continuation follows a
# rule of the prompt, the rejected one is random.
"$PYTHON" - "$OUT/pairs.jsonl" <<'PY'
import json, random, sys
rng = random.Random(5)
with open(sys.argv[1], "w") as f:
    for _ in range(32):
        p = [rng.randrange(3, 320) for _ in range(4)]
        f.write(json.dumps({"chosen_ids": p + [10 + x % 50 for x in p],
                            "rejected_ids": p + [rng.randrange(3, 320) for _ in range(4)]}) + "\n")
PY
"$RONDO" rm train --model "$BASE" --data "$OUT/pairs.jsonl" --out "$OUT/adapter" --lora-r 4 --lora-alpha 8 \
    --target-modules all-linear --lr 2e-2 --epochs 3 --batch-size 8 --threads 1
"$RONDO" rm train --model "$BASE" --data "$OUT/pairs.jsonl" --adapter "$OUT/adapter" --eval-only --threads 1 > "$OUT/eval.json"
"$RONDO" merge --base "$BASE" --adapter "$OUT/adapter" --out "$OUT/merged"
"$PYTHON" Tests/Fixtures/lora/check_peft_rm.py "$BASE" "$OUT/adapter" "$OUT/pairs.jsonl" "$OUT/eval.json" "$OUT/merged"
echo "check-lora-rm-peft: the Rondo reward-model adapter loads in peft and scores the same"
