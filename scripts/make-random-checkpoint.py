#!/usr/bin/env python3
"""Writes a GPT-Neo checkpoint of a given shape with random weights, for load and memory measurements.

    python3 scripts/make-random-checkpoint.py --size 2.7b ~/.cache/gptneo-server-bench/gpt-neo-2.7b-random-f16
    python3 scripts/make-random-checkpoint.py --size 125m --dtype BF16 OUTPUT_DIRECTORY
    python3 scripts/make-random-checkpoint.py --hidden 256 --layers 4 --heads 8 OUTPUT_DIRECTORY

Needs numpy only (no torch), and writes tensor by tensor, so making the 2.7B shape (5.3 GB in F16) takes a
few hundred MB of memory. Output: model.safetensors (every tensor of transformers' GPTNeoForCausalLM, the
LM head tied to wte and so not stored, as save_pretrained writes it), config.json, and the GPT-2 tokenizer
files of models/gpt-neo-kjv-8m (the vocabulary of every GPT-Neo), so gptneo-server can serve it. Weights
and embeddings ~ N(0, 0.02) as transformers initializes them, LayerNorm weights 1, biases 0. Seeded: the
same arguments write the same bytes. Do not commit the output.

Shapes from EleutherAI's configs: 125m (12 layers, hidden 768, 12 heads), 1.3b (24, 2048, 16), 2.7b
(32, 2560, 20); all with vocabulary 50257, 2048 positions, local window 256, global/local alternating,
intermediate size 4 x hidden.
"""
import argparse
import json
import os
import shutil

import numpy as np

REPOSITORY = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TOKENIZER_SOURCE = os.path.join(REPOSITORY, "models", "gpt-neo-kjv-8m")
TOKENIZER_FILES = ["vocab.json", "merges.txt", "tokenizer_config.json"]

SHAPES = {
    "125m": dict(hidden=768, layers=12, heads=12),
    "1.3b": dict(hidden=2048, layers=24, heads=16),
    "2.7b": dict(hidden=2560, layers=32, heads=20),
}
DTYPES = {"F32": 4, "F16": 2, "BF16": 2}
# Rows generated at a time: bounds the memory a large tensor (the 50257 x 2560 embedding) takes.
ROWS_PER_CHUNK = 4096


def tensors(hidden, layers, inner, vocab, positions):
    """(name, shape, kind) of every stored tensor in save_pretrained's order; kind: normal, ones or zeros."""
    yield "transformer.wte.weight", (vocab, hidden), "normal"
    yield "transformer.wpe.weight", (positions, hidden), "normal"
    for layer in range(layers):
        p = f"transformer.h.{layer}."
        yield p + "ln_1.weight", (hidden,), "ones"
        yield p + "ln_1.bias", (hidden,), "zeros"
        for projection in ["k_proj", "v_proj", "q_proj"]:
            yield p + f"attn.attention.{projection}.weight", (hidden, hidden), "normal"
        yield p + "attn.attention.out_proj.weight", (hidden, hidden), "normal"
        yield p + "attn.attention.out_proj.bias", (hidden,), "zeros"
        yield p + "ln_2.weight", (hidden,), "ones"
        yield p + "ln_2.bias", (hidden,), "zeros"
        yield p + "mlp.c_fc.weight", (inner, hidden), "normal"
        yield p + "mlp.c_fc.bias", (inner,), "zeros"
        yield p + "mlp.c_proj.weight", (hidden, inner), "normal"
        yield p + "mlp.c_proj.bias", (hidden,), "zeros"
    yield "transformer.ln_f.weight", (hidden,), "ones"
    yield "transformer.ln_f.bias", (hidden,), "zeros"


def encode(values, dtype):
    """Little-endian bytes of float32 `values` in `dtype`, rounded to nearest even as torch's .to() does."""
    if dtype == "F32":
        return values.astype("<f4").tobytes()
    if dtype == "F16":
        return values.astype("<f2").tobytes()
    bits = values.astype("<f4").view("<u4")
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def write_safetensors(path, specs, dtype, seed):
    size = DTYPES[dtype]
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in specs:
        count = int(np.prod(shape))
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + count * size]}
        offset += count * size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # data section 8-byte aligned, as the safetensors library writes it
    generator = np.random.default_rng(seed)
    with open(path, "wb") as out:
        out.write(len(encoded).to_bytes(8, "little"))
        out.write(encoded)
        for name, shape, kind in specs:
            if kind != "normal":
                out.write(encode(np.full(shape, 1.0 if kind == "ones" else 0.0, dtype=np.float32), dtype))
                continue
            row_size = int(np.prod(shape[1:]))
            for first in range(0, shape[0], ROWS_PER_CHUNK):
                rows = min(ROWS_PER_CHUNK, shape[0] - first)
                values = generator.standard_normal(rows * row_size, dtype=np.float32) * np.float32(0.02)
                out.write(encode(values, dtype))
    return offset


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_directory")
    parser.add_argument("--size", choices=sorted(SHAPES), help="a published GPT-Neo shape (else --hidden/--layers/--heads)")
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--heads", type=int)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--positions", type=int, default=2048)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="F16")
    parser.add_argument("--seed", type=int, default=27)
    arguments = parser.parse_args()
    shape = dict(SHAPES[arguments.size]) if arguments.size else {}
    for key in ["hidden", "layers", "heads"]:
        if getattr(arguments, key) is not None:
            shape[key] = getattr(arguments, key)
    if set(shape) != {"hidden", "layers", "heads"}:
        parser.error("give --size or all of --hidden, --layers and --heads")
    hidden, layers, heads = shape["hidden"], shape["layers"], shape["heads"]
    if hidden % heads or layers % 2:
        parser.error("hidden must be a multiple of heads, and layers even (global/local pairs)")
    inner = 4 * hidden

    output = arguments.output_directory
    partial = output.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    specs = list(tensors(hidden, layers, inner, arguments.vocab, arguments.positions))
    data_bytes = write_safetensors(os.path.join(partial, "model.safetensors"), specs, arguments.dtype, arguments.seed)
    config = {
        "architectures": ["GPTNeoForCausalLM"],
        "model_type": "gpt_neo",
        "activation_function": "gelu_new",
        "attention_types": [[["global", "local"], layers // 2]],
        "attention_dropout": 0.0,
        "embed_dropout": 0.0,
        "resid_dropout": 0.0,
        "bos_token_id": 50256,
        "eos_token_id": 50256,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": None,
        "layer_norm_epsilon": 1e-5,
        "max_position_embeddings": arguments.positions,
        "num_heads": heads,
        "num_layers": layers,
        "tie_word_embeddings": True,
        "vocab_size": arguments.vocab,
        "window_size": arguments.window,
        "dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[arguments.dtype],
    }
    with open(os.path.join(partial, "config.json"), "w") as out:
        json.dump(config, out, indent=2)
    for name in TOKENIZER_FILES:
        shutil.copy(os.path.join(TOKENIZER_SOURCE, name), os.path.join(partial, name))
    shutil.rmtree(output, ignore_errors=True)
    os.rename(partial, output)
    print(f"wrote {output}: {len(specs)} tensors, {data_bytes / 1e9:.2f} GB of {arguments.dtype}")


if __name__ == "__main__":
    main()
