"""Reference values for the tests of the bundled default model, from transformers on the shipped checkpoint.

Run from the repository root after training (CPU, under a minute):

    /path/to/venv/bin/python scripts/train-default-model/generate_default_model_fixtures.py

Writes `Tests/Fixtures/default-model/expected.json`:
- `held_out_slice`: the start of the held-out token stream cut into SLICE_BLOCKS blocks, each as token ids, and
  their perplexity computed by `kjv_eval` — the training script's own scoring code — on the shipped F16
  weights computed in float32. The blocks are one token shorter than the context (511, not the 512 that
  `train.py` scores) because the server admits a prompt only if it leaves room for a generated token, even
  when `echo` with `max_tokens` 0 only scores it; 511 is still far beyond the 128-token local window.
- `greedy`: continuations of fixed prompts by `generate(do_sample=False)`, as text and token ids.
- `sampling_prompts`: the prompts the dictionary-word test samples from with the model's default settings.
"""

import json
import math
import os
import sys

import torch
import transformers
from transformers import AutoTokenizer, GPTNeoForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kjv_corpus  # noqa: E402
import kjv_eval  # noqa: E402
from train import token_stream  # noqa: E402

MODEL_DIR = os.path.join("models", "gpt-neo-kjv-8m")
OUT = os.path.join("Tests", "Fixtures", "default-model", "expected.json")
SLICE_BLOCKS = 2
GREEDY_NEW_TOKENS = 32
GREEDY_PROMPTS = [
    "In the beginning",
    "And the LORD spake unto Moses, saying,",
    "Blessed are the",
    "The LORD is my shepherd;",
    "And Jesus answered and said unto them,",
]
SAMPLING_PROMPTS = ["And God said", "The kingdom of heaven is like", "Then Samuel", "My son, hear"]


def main():
    torch.set_num_threads(2)
    model = GPTNeoForCausalLM.from_pretrained(MODEL_DIR, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    context = model.config.max_position_embeddings

    _, held_out = kjv_corpus.load_split()
    blocks = kjv_eval.blocks(token_stream(tokenizer, held_out), context - 1)[:SLICE_BLOCKS]
    loss = kjv_eval.mean_loss(model, blocks)

    greedy = []
    for prompt in GREEDY_PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=GREEDY_NEW_TOKENS, pad_token_id=tokenizer.eos_token_id)
        new = out[0, ids.shape[1]:].tolist()
        finish = "stop" if new and new[-1] == tokenizer.eos_token_id else "length"
        text_ids = new[:-1] if finish == "stop" else new
        greedy.append({"prompt": prompt, "max_tokens": GREEDY_NEW_TOKENS, "token_ids": text_ids,
                       "text": tokenizer.decode(text_ids), "finish_reason": finish})

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({
            "reference": f"transformers {transformers.__version__}, torch {torch.__version__}: {MODEL_DIR} "
                         "loaded in float32; scripts/train-default-model/generate_default_model_fixtures.py",
            "held_out_slice": {"blocks": [[int(t) for t in b] for b in blocks],
                               "scored_tokens": int(sum(len(b) - 1 for b in blocks)),
                               "mean_negative_log_likelihood": loss, "perplexity": math.exp(loss)},
            "greedy": greedy,
            "sampling_prompts": SAMPLING_PROMPTS,
            "sampling_max_tokens": 40,
        }, f, indent=1)
    print(f"slice perplexity {math.exp(loss):.4f} over {sum(len(b) - 1 for b in blocks)} tokens")
    for g in greedy:
        print(repr(g["prompt"]), "->", repr(g["text"]))


if __name__ == "__main__":
    main()
