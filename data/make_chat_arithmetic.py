#!/usr/bin/env python3
"""Seeded generator of the real-model recipe's task: two-digit addition asked in a chat.

    python3 data/make_chat_arithmetic.py --seed 7 --out data/chat-arithmetic

Writes TRL's conversational prompt form, rendered by the model's chat template at run time:
  prompts.jsonl  {"id": "train-17", "prompt": [{"role": "user", "content": "What is 12 + 35? ..."}], "answer": "47"}
  eval.jsonl     the same form; problems disjoint from prompts.jsonl

The verifier scores a response by the first number on its first line, so "47" is right and
"12 + 35 = 47" is not: the campaign teaches the model to answer with the number alone, as asked.
Same seed, same bytes.
"""
import argparse
import json
import os
import random

QUESTION = "What is {a} + {b}? Reply with the number only."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default="data/chat-arithmetic")
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--eval", type=int, default=200)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pairs = [(a, b) for a in range(10, 100) for b in range(10, 100)]
    rng.shuffle(pairs)
    os.makedirs(args.out, exist_ok=True)
    splits = {"eval": pairs[:args.eval], "train": pairs[args.eval:args.eval + args.train]}
    for name, file in (("train", "prompts.jsonl"), ("eval", "eval.jsonl")):
        with open(os.path.join(args.out, file), "w") as f:
            for i, (a, b) in enumerate(splits[name]):
                line = {"id": f"{name}-{i}", "prompt": [{"role": "user", "content": QUESTION.format(a=a, b=b)}],
                        "answer": str(a + b)}
                f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
