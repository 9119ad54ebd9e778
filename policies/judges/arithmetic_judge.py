#!/usr/bin/env python3
"""Example Rondo command judge (protocol: docs/judges.md).

Reads one JSON request per line on stdin:
    {"id": 7, "prompt": "12+35=", "answer": "47" | null, "responses": ["47", "46", ...]}
and writes one JSON reply per line on stdout:
    {"id": 7, "scores": [1.0, 0.0, ...]}

Scores 1.0 when the first integer in a response equals the value of the arithmetic expression
in the prompt (the text before '='), else 0.0. Keep stdout for replies only: log to stderr.
"""
import json
import re
import sys

EXPR = re.compile(r"(-?\d+)\s*([-+*])\s*(-?\d+)\s*=")
NUMBER = re.compile(r"-?\d+")


def expected(prompt):
    m = EXPR.search(prompt)
    if not m:
        return None
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def score(prompt, response):
    want = expected(prompt)
    got = NUMBER.search(response.split("\n", 1)[0])
    return 1.0 if want is not None and got and int(got.group(0)) == want else 0.0


for line in sys.stdin:
    request = json.loads(line)
    scores = [score(request["prompt"], r) for r in request["responses"]]
    print(json.dumps({"id": request["id"], "scores": scores}), flush=True)
