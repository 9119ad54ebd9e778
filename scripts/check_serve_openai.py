#!/usr/bin/env python3
"""Checks a running `rondo serve` with the official `openai` client (pip install openai).

Usage: check_serve_openai.py BASE_URL MODEL API_KEY PROMPT MAX_TOKENS EXPECTED_GREEDY_TEXT

Checks: /v1/models; a greedy completion equal to EXPECTED_GREEDY_TEXT (what `rondo generate
--temperature 0` wrote); chat; streaming (completions and chat) equal to the same request unstreamed;
n > 1 with a seed (reproducible); logprobs; /health without the key; a 400 for an oversized prompt and for a bad temperature; a 401 for a wrong key;
32 concurrent clients all answered. Prints one JSON line with the figures; exits 1 on any failure.
"""
import concurrent.futures
import json
import sys
import time
import urllib.request

import openai

base, model, key, prompt, max_tokens, expected = sys.argv[1:7]
max_tokens = int(max_tokens)
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300)
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


with urllib.request.urlopen(base.removesuffix("/v1") + "/health") as r:  # open without the key
    check(json.load(r) == {"status": "ok"}, "health")

ids = [m.id for m in client.models.list().data]
check(ids == [model], f"models: {ids}")

greedy = client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, temperature=0)
check(greedy.choices[0].text == expected, f"greedy completion {greedy.choices[0].text!r} != generate's {expected!r}")
check(greedy.usage.completion_tokens >= 1, "usage")

streamed = "".join(c.choices[0].text for c in client.completions.create(
    model=model, prompt=prompt, max_tokens=max_tokens, temperature=0, stream=True))
check(streamed == expected, f"streamed completion {streamed!r} != {expected!r}")

lp = client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, temperature=0, logprobs=0)
check(len(lp.choices[0].logprobs.token_logprobs) == lp.usage.completion_tokens, "completion logprobs")
check(all(x <= 0 for x in lp.choices[0].logprobs.token_logprobs), "logprobs > 0")

streamed_lps = [x for c in client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, temperature=0,
                                                     logprobs=0, stream=True) if c.choices[0].logprobs
                for x in c.choices[0].logprobs.token_logprobs]
check(streamed_lps == lp.choices[0].logprobs.token_logprobs, "streamed logprobs differ from the unstreamed ones")

messages = [{"role": "user", "content": prompt}]
chat = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0.8, seed=11, logprobs=True)
check(chat.choices[0].message.role == "assistant" and isinstance(chat.choices[0].message.content, str), "chat message")
check(chat.choices[0].finish_reason in ("stop", "length"), f"chat finish_reason {chat.choices[0].finish_reason}")
check(len(chat.choices[0].logprobs.content) == chat.usage.completion_tokens, "chat logprobs")
chunks = list(client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0.8, seed=11, stream=True))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check(text == chat.choices[0].message.content, f"streamed chat {text!r} != {chat.choices[0].message.content!r}")
check(chunks[-1].choices[0].finish_reason == chat.choices[0].finish_reason, "streamed finish_reason")

many = client.chat.completions.create(model=model, messages=messages, max_tokens=6, n=3, seed=5, temperature=1)
again = client.chat.completions.create(model=model, messages=messages, max_tokens=6, n=3, seed=5, temperature=1)
check(sorted(c.index for c in many.choices) == [0, 1, 2], "n=3 indexes")
check([c.message.content for c in many.choices] == [c.message.content for c in again.choices], "n=3 not reproducible with a seed")

try:
    client.completions.create(model=model, prompt=prompt * 2000, max_tokens=4)
    failures.append("oversized prompt accepted")
except openai.BadRequestError as e:
    check(e.status_code == 400 and "positions" in str(e), f"oversized prompt: {e}")

try:
    client.chat.completions.create(model=model, messages=messages, max_tokens=4, temperature=5)
    failures.append("temperature 5 accepted")
except openai.BadRequestError as e:
    check(e.status_code == 400 and e.body.get("param") == "temperature", f"bad temperature: {e}")

try:
    openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
    failures.append("wrong key accepted")
except openai.AuthenticationError as e:
    check(e.status_code == 401, f"wrong key: {e}")


def one(i):
    r = client.completions.create(model=model, prompt=prompt, max_tokens=16, temperature=1, seed=i)
    return r.usage.completion_tokens


t0 = time.time()
with concurrent.futures.ThreadPoolExecutor(32) as pool:
    counts = list(pool.map(one, range(32)))
secs = time.time() - t0
check(len(counts) == 32 and all(c >= 1 for c in counts), f"concurrent: {counts}")

print(json.dumps({"clients": 32, "new_tokens": sum(counts), "seconds": round(secs, 3),
                  "new_tokens_per_s": round(sum(counts) / secs, 1), "failures": failures}))
sys.exit(1 if failures else 0)
