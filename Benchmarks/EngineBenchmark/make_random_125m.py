#!/usr/bin/env python3
"""Writes a GPT-Neo checkpoint in gpt-neo-125M's shape with random weights, for the engine benchmark.

    /path/to/venv/bin/python Benchmarks/EngineBenchmark/make_random_125m.py /tmp/gpt-neo-125M-random

Shape (from EleutherAI/gpt-neo-125M's config): 12 layers, hidden 768, 12 heads, attention_types alternating
global/local, window 256, 2048 positions, vocabulary 50257. Weights: transformers' own initialization
(seeded), saved as F32 safetensors (~500 MB) so the engine uses them straight from the mapping.
Needs torch and transformers from PyPI. Do not commit the output.
"""
import sys

import torch
from transformers import GPTNeoConfig, GPTNeoForCausalLM


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTPUT_DIRECTORY")
    torch.manual_seed(125)
    config = GPTNeoConfig(
        vocab_size=50257,
        max_position_embeddings=2048,
        hidden_size=768,
        num_layers=12,
        attention_types=[[["global", "local"], 6]],
        num_heads=12,
        intermediate_size=None,
        window_size=256,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        bos_token_id=50256,
        eos_token_id=50256,
    )
    model = GPTNeoForCausalLM(config).eval()
    model.save_pretrained(sys.argv[1], safe_serialization=True)
    print("wrote", sys.argv[1])


if __name__ == "__main__":
    main()
