#!/usr/bin/env python3
"""Token ids of held-out text for `EngineBenchmark MODEL accuracy TOKENS.json` (int8 against float32 on a trained model).

Run from the repository root with the bundled default model's scripts present (scripts/train-default-model) and
Debian's `bible-kjv` installed:

    /path/to/venv/bin/python Benchmarks/EngineBenchmark/make_accuracy_tokens.py models/gpt-neo-kjv-8m /tmp/kjv-accuracy.json

Needs `transformers` (the model's GPT-2 tokenizer), `torch` and `numpy` (imported by the training script). Writes JSON with
- `blocks`: the held-out token stream (the chapters the default model was not trained on) cut into blocks of the
  model's context, as the training script scores it (kjv_eval.blocks);
- `prompts`: 20 prompts, the first 16 tokens of 20 held-out chapters spread over the Bible, for greedy continuations.
"""

import json
import os
import sys

from transformers import AutoConfig, AutoTokenizer

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "scripts", "train-default-model"))
import kjv_corpus  # noqa: E402
import kjv_eval  # noqa: E402
from train import token_stream  # noqa: E402

PROMPTS = 20
PROMPT_TOKENS = 16


def main(model_dir: str, out_path: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    context = AutoConfig.from_pretrained(model_dir).max_position_embeddings
    _, held_out = kjv_corpus.load_split()
    blocks = [[int(t) for t in block] for block in kjv_eval.blocks(token_stream(tokenizer, held_out), context)]
    step = len(held_out) // PROMPTS
    prompts = [tokenizer(held_out[i * step].text)["input_ids"][:PROMPT_TOKENS] for i in range(PROMPTS)]
    with open(out_path, "w") as out:
        json.dump({"blocks": blocks, "prompts": prompts}, out)
    print(f"{len(blocks)} blocks of up to {context} tokens, {len(prompts)} prompts -> {out_path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
