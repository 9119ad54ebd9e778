#!/usr/bin/env python3
"""Seeded generator of the default campaign's task: integer addition with a checkable answer.

    python3 data/make_arithmetic.py --seed 1234 --out data/arithmetic

Writes (JSON lines, TRL conventions):
  sft.jsonl          {"prompt": "12+35=", "completion": "47"}       supervised data for the starter policy
  prompts.jsonl      {"id": "train-17", "prompt": "12+35=", "answer": "47"}   campaign prompts
  eval.jsonl         {"id": "eval-3", "prompt": ..., "answer": ...}  held-out prompts (disjoint from both above)
  eval-1000.jsonl    eval.jsonl's prompts followed by --eval-extra more (drawn after all the others, so
                     every other file is unchanged by it): the default campaign's held-out set, whose
                     accuracy carries about 1.3 points of sampling noise instead of eval.jsonl's 2.9
  preferences.jsonl  {"prompt", "chosen", "rejected"}               pairs for reward-model training
                     (chosen = the right sum, rejected = a plausible wrong one: off by one in a digit,
                     a dropped carry, or a digit repeated)

Every problem appears in at most one file's prompt set, so evaluation is held out. Same seed,
same bytes.
"""
import argparse
import json
import os
import random


def problems(rng, lo, hi):
    seen = set()
    while True:
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        if (a, b) not in seen:
            seen.add((a, b))
            yield a, b


def wrong_answer(rng, a, b):
    s = a + b
    kind = rng.randrange(4)
    if kind == 0:
        w = s + rng.choice([-1, 1])
    elif kind == 1:
        w = s + rng.choice([-10, 10])
    elif kind == 2:  # dropped carry
        w = (a % 10 + b % 10) % 10 + 10 * ((a // 10 + b // 10) % 10) + 100 * ((a // 100 + b // 100))
    else:  # a repeated digit
        t = str(s)
        w = int(t + t[-1]) if len(t) < 3 else int(t[:-1])
    return w if w != s and w >= 0 else s + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "arithmetic"))
    ap.add_argument("--max", type=int, default=99, help="operands are drawn from 0..max")
    ap.add_argument("--sft", type=int, default=4000)
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--eval", type=int, default=200)
    ap.add_argument("--preferences", type=int, default=2000)
    ap.add_argument("--eval-extra", type=int, default=800, help="held-out prompts added to eval.jsonl's in eval-1000.jsonl")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    gen = problems(rng, 0, args.max)
    os.makedirs(args.out, exist_ok=True)

    def write(name, rows):
        with open(os.path.join(args.out, name), "w") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    eval_set = [next(gen) for _ in range(args.eval)]
    train_prompts = [next(gen) for _ in range(args.prompts)]
    sft = [next(gen) for _ in range(args.sft)]
    prefs = [next(gen) for _ in range(args.preferences)]
    held_out = lambda rows: [{"id": f"eval-{i}", "prompt": f"{a}+{b}=", "answer": str(a + b)} for i, (a, b) in enumerate(rows)]
    write("eval.jsonl", held_out(eval_set))
    write("prompts.jsonl", [{"id": f"train-{i}", "prompt": f"{a}+{b}=", "answer": str(a + b)} for i, (a, b) in enumerate(train_prompts)])
    write("sft.jsonl", [{"prompt": f"{a}+{b}=", "completion": str(a + b)} for a, b in sft])
    write("preferences.jsonl", [{"prompt": f"{a}+{b}=", "chosen": str(a + b), "rejected": str(wrong_answer(rng, a, b))}
                                for a, b in prefs])
    extra = [next(gen) for _ in range(args.eval_extra)]  # last: every draw above is unchanged by it
    write(f"eval-{args.eval + args.eval_extra}.jsonl", held_out(eval_set + extra))


if __name__ == "__main__":
    main()
