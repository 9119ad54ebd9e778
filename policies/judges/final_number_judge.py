#!/usr/bin/env python3
"""Command judge of the SmolLM2 recipe (protocol: docs/judges.md).

Scores 1.0 when the last number in a response's first line equals the prompt's "answer", else 0.0.
An instruct model answers "What is 14 + 29?" with "14 + 29 = 43" (right) or starts a long
explanation that the token budget cuts off (no answer: 0). Keep stdout for replies only.
"""
import json
import re
import sys

NUMBER = re.compile(r"-?\d+")

for line in sys.stdin:
    request = json.loads(line)
    want = request.get("answer")
    scores = []
    for response in request["responses"]:
        numbers = NUMBER.findall(response.strip().split("\n", 1)[0])
        scores.append(1.0 if want is not None and numbers and numbers[-1] == str(want) else 0.0)
    print(json.dumps({"id": request["id"], "scores": scores}), flush=True)
