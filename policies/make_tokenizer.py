#!/usr/bin/env python3
"""Writes the starter policy's tokenizer: byte-level BPE with no merges (every UTF-8 byte is one
token, GPT-2 byte-to-unicode alphabet) plus three special tokens. Loads with HF `tokenizers`.

    python3 policies/make_tokenizer.py policies/starter/tokenizer.json

Ids: <|bos|> = 0, <|eos|> = 1, <|pad|> = 2, then the 256 byte symbols in byte order (byte b → id 3 + b).
"""
import json
import sys


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def main(path):
    specials = ["<|bos|>", "<|eos|>", "<|pad|>"]
    table = bytes_to_unicode()
    vocab = {tok: i for i, tok in enumerate(specials)}
    for b in range(256):
        vocab[table[b]] = len(specials) + b
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for i, t in enumerate(specials)
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }
    with open(path, "w") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tokenizer.json")
