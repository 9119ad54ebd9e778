// Byte-level BPE tokenizers read from HF tokenizer.json (sampling issue).
