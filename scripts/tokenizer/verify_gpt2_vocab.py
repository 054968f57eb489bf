#!/usr/bin/env python3
"""Checks that HF's GPT2TokenizerFast built from the derived vocab.json + merges.txt behaves as GPT-2.

1. The ids HF documents for GPT-2 (`"Hello world"` -> [15496, 995], `" Hello world"` -> [18435, 995]).
2. Every token of gpt2.tiktoken, BPE'd from its own bytes by HF's model, comes back as that single id.
3. On the fixture corpus, HF's ids equal tiktoken's algorithm (merge the adjacent pair whose concatenation
   has the lowest rank) run on the rank file directly, an independent implementation of GPT-2's BPE.

Usage: verify_gpt2_vocab.py path/to/gpt2.tiktoken
"""

import base64
import os
import random
import sys

import regex  # installed with transformers
from transformers import GPT2TokenizerFast

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(__file__))
from make_gpt2_vocab import bytes_to_unicode  # noqa: E402
from tokenizer_corpus import corpus  # noqa: E402

PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def rank_bpe(piece, ranks):
    parts = [bytes([b]) for b in piece]
    while len(parts) > 1:
        best = min(range(len(parts) - 1), key=lambda i: ranks.get(parts[i] + parts[i + 1], 1 << 30))
        if parts[best] + parts[best + 1] not in ranks:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return [ranks[part] for part in parts]


def main():
    ranks = {}
    with open(sys.argv[1], "rb") as handle:
        for line in handle:
            encoded, rank = line.split()
            ranks[base64.b64decode(encoded)] = int(rank)
    tokenizer = GPT2TokenizerFast.from_pretrained(os.path.join(REPO_ROOT, "Tests", "Fixtures", "tiny-gpt-neo"))
    assert tokenizer("Hello world").input_ids == [15496, 995]
    assert tokenizer(" Hello world").input_ids == [18435, 995]

    table = bytes_to_unicode()
    model = tokenizer.backend_tokenizer.model
    wrong = [rank for token, rank in ranks.items()
             if [t.id for t in model.tokenize("".join(table[b] for b in token))] != [rank]]
    print(f"tokens that do not BPE to themselves: {len(wrong)} of {len(ranks)}")

    mismatches = 0
    texts = [text for _, text in corpus(random.Random(20250625))]
    for text in texts:
        expected = [i for piece in PATTERN.findall(text) for i in rank_bpe(piece.encode(), ranks)]
        got = tokenizer(text, add_special_tokens=False, split_special_tokens=True).input_ids
        if got != expected:
            mismatches += 1
            if mismatches <= 5:
                print("mismatch:", repr(text[:60]), got[:10], expected[:10])
    print(f"corpus texts where HF differs from tiktoken's algorithm: {mismatches} of {len(texts)}")
    if wrong or mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
