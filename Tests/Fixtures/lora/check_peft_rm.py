#!/usr/bin/env python3
"""Checks a reward-model LoRA adapter written by `rondo rm train --lora-r` against Hugging Face peft.

Usage: check_peft_rm.py BASE_DIR ADAPTER_DIR PAIRS_JSONL RONDO_EVAL_JSON MERGED_DIR [--tol 1e-4]

1. `PeftModel.from_pretrained(AutoModelForSequenceClassification(BASE, num_labels=1), ADAPTER_DIR)`
   loads every lora_A/lora_B tensor and the score head (`base_model.model.score.weight`, held by
   peft as `…score.modules_to_save.default.weight`) exactly as written; lora_B is non-zero.
2. peft's scores of every chosen and rejected sequence in PAIRS_JSONL give the loss, accuracy and
   mean rewards Rondo printed (`rondo rm train --eval-only --adapter`, RONDO_EVAL_JSON) within --tol.
3. Rondo's merged reward model (`rondo merge`) scores as peft (adapter on) within --tol.
Exits non-zero on any failure.
"""
import argparse, json, sys

import torch
import torch.nn.functional as F
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

ap = argparse.ArgumentParser()
for name in ["base", "adapter", "pairs", "eval", "merged"]:
    ap.add_argument(name)
ap.add_argument("--tol", type=float, default=1e-4)
a = ap.parse_args()
torch.set_grad_enabled(False)

def load(d):
    return AutoModelForSequenceClassification.from_pretrained(
        d, num_labels=1, dtype=torch.float32, attn_implementation="eager").eval()

failures = []
raw = load_file(f"{a.adapter}/adapter_model.safetensors")
model = PeftModel.from_pretrained(load(a.base), a.adapter).eval()
state = model.state_dict()
for k, v in raw.items():
    mk = (k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
           .replace("score.weight", "score.modules_to_save.default.weight"))
    if mk not in state or not torch.equal(state[mk], v):
        failures.append(f"{k}: not loaded as written (as {mk})")
if "base_model.model.score.weight" not in raw:
    failures.append("the adapter file holds no score head")
if all(float(v.abs().max()) == 0 for k, v in raw.items() if ".lora_B." in k):
    failures.append("every lora_B is zero: the adapter is a no-op and checks nothing")

def score(m, ids):
    return float(m(input_ids=torch.tensor([ids])).logits[0, 0])

pairs = [json.loads(l) for l in open(a.pairs) if l.strip()]
chosen = [score(model, p["chosen_ids"]) for p in pairs]
rejected = [score(model, p["rejected_ids"]) for p in pairs]
d = torch.tensor(chosen, dtype=torch.float64) - torch.tensor(rejected, dtype=torch.float64)
theirs = {"loss": float(F.softplus(-d).mean()), "accuracy": float((d > 0).double().mean()),
          "rewards/chosen": sum(chosen) / len(chosen), "rewards/rejected": sum(rejected) / len(rejected)}
mine = json.load(open(a.eval))
for k, v in theirs.items():
    diff = abs(mine[k] - v)
    print(f"{k}: rondo {mine[k]:.6g}  peft {v:.6g}  diff {diff:.3g}")
    if not diff <= a.tol * max(1.0, abs(v)):
        failures.append(f"{k} differs: rondo {mine[k]}, peft {v}")

merged = load(a.merged)
worst = max(abs(score(merged, s) - score(model, s)) for p in pairs for s in (p["chosen_ids"], p["rejected_ids"]))
print(f"rondo merge vs peft (adapter on): max abs score diff {worst:.3g}")
if not worst <= a.tol:
    failures.append(f"merged scores differ by {worst} > {a.tol}")

for f in failures:
    print("FAIL:", f, file=sys.stderr)
sys.exit(1 if failures else 0)
