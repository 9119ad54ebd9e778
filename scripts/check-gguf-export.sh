#!/usr/bin/env bash
# Exports the oracle policy as f32 and q8_0 GGUF files and checks them with
# Tests/Fixtures/gguf/check_export.py (gguf-py structure checks, transformers' logits against the
# original HF model, the tokenizer cases, and for q8_0 every tensor byte-identical to the fixture).
#
# Needs a Python with gguf, transformers>=5, accelerate and torch, e.g.
#   pip install gguf "transformers>=5" accelerate torch --extra-index-url https://download.pytorch.org/whl/cpu
# PYTHON selects the interpreter (default python3). Not run by CI (see docs/gguf.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
FIX=Tests/Fixtures/gguf
swift build --product rondo
RONDO=$(swift build --show-bin-path)/rondo
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

"$RONDO" export-gguf Tests/Fixtures/oracle/policy --out "$OUT/policy-f32.gguf" --type f32
"$PYTHON" "$FIX/check_export.py" "$OUT/policy-f32.gguf"

"$RONDO" export-gguf Tests/Fixtures/oracle/policy --out "$OUT/policy-q8_0.gguf" --type q8_0
"$PYTHON" "$FIX/check_export.py" "$OUT/policy-q8_0.gguf" --tol 1 --reference "$FIX/tiny-q8_0.gguf"
echo "check-gguf-export: both exports pass"
