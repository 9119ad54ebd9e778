#!/usr/bin/env python3
"""Checks a LoRA adapter written by Rondo against Hugging Face peft.

Usage: check_peft.py BASE_DIR ADAPTER_DIR RONDO_LOGPROBS_JSONL MERGED_DIR [--tol 1e-4]

1. `PeftModel.from_pretrained(base, ADAPTER_DIR)` loads Rondo's adapter_config.json and
   adapter_model.safetensors (strictly: every lora_A/lora_B key consumed, none missing, B non-zero).
2. Its per-token log-probs of every response in RONDO_LOGPROBS_JSONL (the output of
   `rondo logprobs --model BASE --adapter ADAPTER`) equal Rondo's within --tol (absolute).
3. The logits of Rondo's merged model (`rondo merge`, loaded as a plain LlamaForCausalLM) equal
   peft's (adapter on) within --tol, and peft's own merge_and_unload weights equal Rondo's within 1e-6.
Exits non-zero on any failure.
"""
import argparse, json, sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("base"); ap.add_argument("adapter"); ap.add_argument("logprobs"); ap.add_argument("merged")
ap.add_argument("--tol", type=float, default=1e-4)
a = ap.parse_args()
torch.set_grad_enabled(False)

def load(d):
    return AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager").eval()

failures = []
raw = load_file(f"{a.adapter}/adapter_model.safetensors")
peft_model = PeftModel.from_pretrained(load(a.base), a.adapter).eval()
state = {k: v for k, v in peft_model.state_dict().items() if "lora_" in k}
if len(state) != len(raw):
    failures.append(f"peft holds {len(state)} lora tensors, the file {len(raw)}")
for k, v in raw.items():
    mk = k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
    if mk not in state or not torch.equal(state[mk], v):
        failures.append(f"{k}: not loaded as written")
if all(float(v.abs().max()) == 0 for k, v in raw.items() if ".lora_B." in k):
    failures.append("every lora_B is zero: the adapter is a no-op and checks nothing")

worst = 0.0
rows = [json.loads(l) for l in open(a.logprobs) if l.strip()]
for r in rows:
    ids = torch.tensor([r["prompt_ids"] + r["response_ids"]])
    lp = torch.log_softmax(peft_model(ids).logits[0].float(), -1)
    p = len(r["prompt_ids"])
    mine = torch.tensor([lp[p + j - 1, t].item() for j, t in enumerate(r["response_ids"])])
    worst = max(worst, float((mine - torch.tensor(r["logprobs"])).abs().max()))
print(f"peft vs rondo logprobs --adapter: max abs diff {worst:.3g} over {len(rows)} sequences")
if not worst <= a.tol:
    failures.append(f"log-probs differ by {worst} > {a.tol}")

merged = load(a.merged)
worst_logit = 0.0
for r in rows:
    ids = torch.tensor([r["prompt_ids"] + r["response_ids"]])
    worst_logit = max(worst_logit, float((merged(ids).logits - peft_model(ids).logits).abs().max()))
print(f"rondo merge vs peft (adapter on): max abs logit diff {worst_logit:.3g}")
if not worst_logit <= a.tol:
    failures.append(f"merged logits differ by {worst_logit} > {a.tol}")
theirs = peft_model.merge_and_unload().state_dict()
mine = merged.state_dict()
wdiff = max(float((mine[k] - theirs[k]).abs().max()) for k in theirs)
print(f"rondo merge vs peft merge_and_unload: max abs weight diff {wdiff:.3g}")
if not wdiff <= 1e-6:
    failures.append(f"merged weights differ by {wdiff} > 1e-6")

for f in failures:
    print("FAIL:", f, file=sys.stderr)
sys.exit(1 if failures else 0)
