#!/usr/bin/env python3
"""Writes the seed corpus of CheckpointFuzzer (Fuzz/checkpoint/corpus) with torch.save.

Run by hand (needs `torch`), from the repository root:

    /path/to/venv/bin/python Fuzz/checkpoint/make_corpus.py

Each input starts with a mode byte: 0 = the rest is a whole torch.save archive, 1 = the rest is a bare
data.pkl whose storages are the fuzzer's fixed ones (`0`: 64 bytes, `1`: 16, `2`: 4, `3`: 1), so these
state dicts stay small enough to fit them.
"""
import collections
import io
import os
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def cases():
    base = torch.arange(16, dtype=torch.float32)
    yield "plain", {"w": base[:4].clone(), "b": torch.ones(2)}
    yield "views", {"t": base.view(4, 4).t(), "row": base.view(4, 4)[2], "scalar": base[3]}
    yield "dtypes", {"h": torch.ones(3, dtype=torch.float16), "bf": torch.ones(3, dtype=torch.bfloat16),
                     "mask": torch.ones(2, 2, dtype=torch.bool)}
    ordered = collections.OrderedDict(a=torch.zeros(2), b=torch.zeros(1))
    ordered._metadata = collections.OrderedDict({"": {"version": 1}})
    yield "ordered-metadata", ordered
    yield "parameter", {"p": torch.nn.Parameter(torch.ones(2))}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, state in cases():
        for protocol in (2, 4, 5):
            buffer = io.BytesIO()
            torch.save(state, buffer, pickle_protocol=protocol)
            archive = buffer.getvalue()
            with open(os.path.join(OUT, f"archive-{name}-p{protocol}"), "wb") as f:
                f.write(b"\x00" + archive)
            with zipfile.ZipFile(io.BytesIO(archive)) as z:
                pickle = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
            with open(os.path.join(OUT, f"pickle-{name}-p{protocol}"), "wb") as f:
                f.write(b"\x01" + pickle)


if __name__ == "__main__":
    main()
