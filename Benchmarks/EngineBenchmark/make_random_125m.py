#!/usr/bin/env python3
"""Writes a GPT-Neo checkpoint in gpt-neo-125M's shape (or 1.3B's) with random weights, for benchmarks.

    /path/to/venv/bin/python Benchmarks/EngineBenchmark/make_random_125m.py /tmp/gpt-neo-125M-random
    /path/to/venv/bin/python Benchmarks/EngineBenchmark/make_random_125m.py --size 1.3b /tmp/gpt-neo-1.3B-random

Shapes (from EleutherAI's configs): 125m has 12 layers, hidden 768, 12 heads; 1.3b has 24 layers, hidden 2048,
16 heads (head dimension 128). Both: attention_types alternating global/local, window 256, 2048 positions,
vocabulary 50257. Weights: transformers' own initialization (seeded), saved as F32 safetensors (~500 MB for
125m, ~5.3 GB for 1.3b) so the engine uses them straight from the mapping. Needs torch and transformers from
PyPI. Do not commit the output.
"""
import argparse

import torch
from transformers import GPTNeoConfig, GPTNeoForCausalLM

SHAPES = {
    "125m": dict(hidden_size=768, num_layers=12, num_heads=12),
    "1.3b": dict(hidden_size=2048, num_layers=24, num_heads=16),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_directory")
    parser.add_argument("--size", choices=sorted(SHAPES), default="125m")
    arguments = parser.parse_args()
    torch.manual_seed(125)
    shape = SHAPES[arguments.size]
    config = GPTNeoConfig(
        vocab_size=50257,
        max_position_embeddings=2048,
        hidden_size=shape["hidden_size"],
        num_layers=shape["num_layers"],
        attention_types=[[["global", "local"], shape["num_layers"] // 2]],
        num_heads=shape["num_heads"],
        intermediate_size=None,
        window_size=256,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        bos_token_id=50256,
        eos_token_id=50256,
    )
    model = GPTNeoForCausalLM(config).eval()
    model.save_pretrained(arguments.output_directory, safe_serialization=True)
    print("wrote", arguments.output_directory)


if __name__ == "__main__":
    main()
