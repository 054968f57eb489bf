#!/usr/bin/env python3
"""Writes GPT-2's `vocab.json` and `merges.txt` from the tiktoken rank file `gpt2.tiktoken`.

Where the input comes from: `whisper/assets/gpt2.tiktoken` in the `openai-whisper` source
distribution on PyPI (MIT licence). Fetch it with

    pip download --no-deps --no-binary :all: openai-whisper==20250625
    tar xzf openai_whisper-20250625.tar.gz

and pass `openai_whisper-20250625/whisper/assets/gpt2.tiktoken`. Each line is `base64(token bytes) rank`;
the ranks are exactly GPT-2's ids 0..50255 (256 single bytes, then one token per merge in merge order),
and `<|endoftext|>` (50256) is not in the file.

How the merges are derived: the token of rank r >= 256 was made by merge number r - 256. Its two halves
are what byte-level BPE produces on the token's bytes when only ranks below r may merge (tiktoken's
merge loop: repeatedly join the adjacent pair whose concatenation has the lowest rank). That loop must
end with exactly two parts, both tokens; the script checks it.

Output (the format of GPT-2's published files): `vocab.json` maps the byte-to-unicode spelling of each
token to its id (Python's default `json.dumps`: ASCII with \\u escapes, `", "` and `": "`); `merges.txt` is `#version: 0.2` then one `left right` line per
merge in rank order, newline-terminated.

Usage: make_gpt2_vocab.py [gpt2.tiktoken] [output directory]
(defaults: the sdist path above, Tests/Fixtures/tiny-gpt-neo relative to the repository root).
"""

import base64
import json
import os
import sys

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_INPUT = "openai_whisper-20250625/whisper/assets/gpt2.tiktoken"
DEFAULT_OUTPUT = os.path.join(REPO_ROOT, "Tests", "Fixtures", "tiny-gpt-neo")
END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table (printable Latin-1 bytes map to themselves,
    the others to U+0100 onward, in byte order)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table = {}
    extra = 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def read_ranks(path):
    ranks = {}
    with open(path, "rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            encoded, rank = line.split()
            token = base64.b64decode(encoded)
            ranks[token] = int(rank)
    ids = sorted(ranks.values())
    if ids != list(range(len(ids))):
        raise SystemExit(f"{path}: ranks are not 0..{len(ids) - 1} without gaps")
    return ranks


def split_of(token, rank, ranks):
    """Byte-level BPE over `token` using only ranks below `rank`; returns the final parts."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best_index, best_rank = None, None
        for index in range(len(parts) - 1):
            candidate = ranks.get(parts[index] + parts[index + 1])
            if candidate is not None and candidate < rank and (best_rank is None or candidate < best_rank):
                best_index, best_rank = index, candidate
        if best_index is None:
            break
        parts[best_index:best_index + 2] = [parts[best_index] + parts[best_index + 1]]
    return parts


def main():
    input_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_INPUT
    output_dir = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUTPUT
    ranks = read_ranks(input_path)
    by_id = {rank: token for token, rank in ranks.items()}
    byte_table = bytes_to_unicode()

    def spell(token):
        return "".join(byte_table[b] for b in token)

    for rank in range(256):
        if len(by_id[rank]) != 1:
            raise SystemExit(f"rank {rank} is not a single byte: the file is not GPT-2's layout")

    merges = []
    for rank in range(256, len(by_id)):
        parts = split_of(by_id[rank], rank, ranks)
        if len(parts) != 2:
            raise SystemExit(f"rank {rank} ({by_id[rank]!r}) does not come from one merge: {parts!r}")
        merges.append(f"{spell(parts[0])} {spell(parts[1])}")

    vocab = {spell(by_id[rank]): rank for rank in range(len(by_id))}
    vocab[END_OF_TEXT] = len(by_id)

    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "vocab.json"), "w", encoding="utf-8") as handle:
        json.dump(vocab, handle)  # json.dumps defaults: what OpenAI published (1,042,301 bytes)
    with open(os.path.join(output_dir, "merges.txt"), "w", encoding="utf-8", newline="\n") as handle:
        handle.write("#version: 0.2\n")
        for merge in merges:
            handle.write(merge + "\n")
    print(f"wrote {len(vocab)} tokens and {len(merges)} merges to {output_dir}")


if __name__ == "__main__":
    main()
