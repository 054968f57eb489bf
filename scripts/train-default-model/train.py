"""Trains the bundled default model: a small GPTNeoForCausalLM on the King James Bible.

Run from the repository root (CPU only; about an hour on two cores):

    /path/to/venv/bin/python scripts/train-default-model/train.py --out models/gpt-neo-kjv-8m

The recipe, the versions it was run with and the figures it produced are in the model card
(`models/gpt-neo-kjv-8m/README.md`); `training_metrics.json` beside the checkpoint records every figure.

Reproducibility: the seed fixes the initial weights and the order of training windows, and torch runs on a
fixed number of threads. Training stops at `--max-steps` or after `--wall-clock-minutes`, whichever comes
first. The learning rate is warmed up, held, then decayed linearly to zero over the last fifth of training
("warmup-stable-decay"). The decay starts at 80 % of `--max-steps` or, if the wall clock would run out first,
at 75 % of the wall-clock budget (lasting a quarter as many steps again); the step it started at is recorded, so rerunning with
`--max-steps E --decay-start-step S` and a generous `--wall-clock-minutes` repeats the same schedule without
any wall-clock dependence.
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
from transformers import AutoTokenizer, GenerationConfig, GPTNeoConfig, GPTNeoForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kjv_corpus  # noqa: E402
import kjv_eval  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKENIZER_DIR = os.path.join(REPO_ROOT, "Tests", "Fixtures", "tiny-gpt-neo")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the checkpoint and its figures")
    parser.add_argument("--seed", type=int, default=1611)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=6, help="alternating global and local, so even")
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--context", type=int, default=512, help="max_position_embeddings and training window")
    parser.add_argument("--window-size", type=int, default=128, help="local attention window (< context)")
    parser.add_argument("--batch-size", type=int, default=2, help="sequences of --context tokens per step")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--max-steps", type=int, default=900)
    parser.add_argument("--decay-start-step", type=int, default=None,
                        help="fix the start of the learning-rate decay (default: 80%% of the run)")
    parser.add_argument("--wall-clock-minutes", type=float, default=50.0)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--eval-blocks", type=int, default=12, help="held-out blocks scored at each evaluation")
    return parser.parse_args()


# MARK: - Data

def token_stream(tokenizer, chapters) -> np.ndarray:
    """Every chapter's tokens followed by <|endoftext|>, as GPT-2 was trained on documents."""
    ids = []
    for chapter in chapters:
        ids.extend(tokenizer(chapter.text)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    return np.asarray(ids, dtype=np.int64)


def training_batch(stream: np.ndarray, generator: np.random.Generator, batch_size: int, context: int) -> torch.Tensor:
    starts = generator.integers(0, len(stream) - context, size=batch_size)
    return torch.from_numpy(np.stack([stream[s:s + context] for s in starts]))


# MARK: - Schedule

def learning_rate(step: int, args, decay_start: int, decay_end: int) -> float:
    if step < args.warmup_steps:
        return args.learning_rate * (step + 1) / args.warmup_steps
    if step < decay_start:
        return args.learning_rate
    return args.learning_rate * max(0.0, (decay_end - step) / max(1, decay_end - decay_start))


def make_optimizer(model, args):
    # Decay matrices only (the tied embedding included), as nanoGPT does; biases and LayerNorm gains stay free.
    parameters = [p for p in model.parameters() if p.requires_grad]
    decayed = [p for p in parameters if p.dim() >= 2]
    free = [p for p in parameters if p.dim() < 2]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": args.weight_decay},
                              {"params": free, "weight_decay": 0.0}],
                             lr=args.learning_rate, betas=(0.9, 0.95), eps=1e-8)


# MARK: - Checkpoint

def model_config(args) -> GPTNeoConfig:
    if args.num_layers % 2 != 0 or args.window_size >= args.context:
        raise SystemExit("num-layers must be even and window-size smaller than context")
    return GPTNeoConfig(
        vocab_size=50257, max_position_embeddings=args.context, hidden_size=args.hidden_size,
        num_layers=args.num_layers, num_heads=args.num_heads,
        attention_types=[[["global", "local"], args.num_layers // 2]], window_size=args.window_size,
        activation_function="gelu_new", embed_dropout=0.0, attention_dropout=0.0, resid_dropout=0.0,
        layer_norm_epsilon=1e-5, initializer_range=0.02, bos_token_id=50256, eos_token_id=50256,
        tie_word_embeddings=True)


def save_checkpoint(model, out: str):
    """F16 safetensors with config and the GPT-2 tokenizer files; written to a temporary folder, then swapped in."""
    staging = out + ".saving"
    shutil.rmtree(staging, ignore_errors=True)
    half = GPTNeoForCausalLM(model.config)
    half.load_state_dict(model.state_dict())
    # Sampling defaults for requests that set none: mild temperature and nucleus sampling, as hub
    # checkpoints of small causal models commonly ship.
    half.generation_config = GenerationConfig(bos_token_id=50256, eos_token_id=50256, do_sample=True,
                                              temperature=0.8, top_p=0.95, top_k=0)
    half.to(torch.float16).save_pretrained(staging, safe_serialization=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(TOKENIZER_DIR, name), os.path.join(staging, name))
    with open(os.path.join(staging, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "GPT2Tokenizer", "model_max_length": model.config.max_position_embeddings,
                   "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                   "add_prefix_space": False}, f, indent=2)
    for name in os.listdir(staging):
        os.replace(os.path.join(staging, name), os.path.join(out, name))
    os.rmdir(staging)


def main():
    args = parse_arguments()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    generator = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    train_chapters, held_out_chapters = kjv_corpus.load_split()
    train_stream = token_stream(tokenizer, train_chapters)
    held_out_stream = token_stream(tokenizer, held_out_chapters)
    held_out_blocks = kjv_eval.blocks(held_out_stream, args.context)
    print(f"training tokens {len(train_stream)}, held-out tokens {len(held_out_stream)} "
          f"({len(held_out_blocks)} blocks of {args.context})", flush=True)

    model = GPTNeoForCausalLM(model_config(args))
    model.train()
    optimizer = make_optimizer(model, args)
    print(f"parameters {sum(p.numel() for p in model.parameters())}", flush=True)

    started = time.monotonic()
    budget = args.wall_clock_minutes * 60
    decay_start = args.decay_start_step if args.decay_start_step is not None else int(0.8 * args.max_steps)
    decay_end = args.max_steps
    decay_reason = "fixed" if args.decay_start_step is not None else "step count"
    history = {"train": [], "held_out": []}
    metrics = {}
    step = 0

    def evaluate_and_save():
        model.eval()
        loss = kjv_eval.mean_loss(model, held_out_blocks[:args.eval_blocks])
        model.train()
        history["held_out"].append({"step": step, "loss": loss, "tokens": step * args.batch_size * args.context})
        print(f"step {step} held-out loss {loss:.4f} (ppl {math.exp(loss):.2f}) "
              f"{time.monotonic() - started:.0f}s", flush=True)
        save_checkpoint(model, args.out)
        metrics.update({
            "steps": step, "decay_start_step": decay_start, "decay_end_step": decay_end,
            "decay_start_set_by": decay_reason, "wall_clock_seconds": round(time.monotonic() - started, 1),
            "stopped_by": stopped_by, "training_tokens_seen": step * args.batch_size * args.context,
            "training_stream_tokens": int(len(train_stream)), "held_out_stream_tokens": int(len(held_out_stream)),
            "arguments": {**vars(args), "out": os.path.relpath(os.path.abspath(args.out), REPO_ROOT)}, "torch": torch.__version__,
            "transformers": __import__("transformers").__version__, "history": history})
        with open(os.path.join(args.out, "training_metrics.json"), "w") as f:
            json.dump(metrics, f, indent=1)

    stopped_by = "running"
    while step < decay_end:
        elapsed = time.monotonic() - started
        if elapsed >= budget:
            stopped_by = "wall clock"
            break
        if args.decay_start_step is None and step < decay_start and elapsed >= 0.75 * budget:
            # The wall clock will end the run before the step count: decay over a fifth of the run,
            # sized from the step rate so far so that it ends before the budget does.
            decay_start = max(step, args.warmup_steps)
            decay_end = min(args.max_steps, decay_start + max(1, decay_start // 4))
            decay_reason = "wall clock"
            print(f"wall clock: decay from step {decay_start} to {decay_end}", flush=True)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args, decay_start, decay_end)
        batch = training_batch(train_stream, generator, args.batch_size, args.context)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        history["train"].append({"step": step, "loss": loss.item()})
        if step % 10 == 0:
            print(f"step {step} loss {loss.item():.4f} lr {optimizer.param_groups[0]['lr']:.2e} "
                  f"{time.monotonic() - started:.0f}s", flush=True)
        if step % args.eval_every == 0 and step < decay_end:
            evaluate_and_save()
    if stopped_by == "running":
        # The last step of the schedule; that schedule's length came from the wall clock if it set the decay.
        stopped_by = "end of schedule sized by the wall clock" if decay_reason == "wall clock" else "step count"
    evaluate_and_save()
    # The figure users get: the shipped F16 weights, computed in float32 as the server does.
    shipped = GPTNeoForCausalLM.from_pretrained(args.out, dtype=torch.float32).eval()
    shipped_loss = kjv_eval.mean_loss(shipped, held_out_blocks)
    metrics.update({"held_out_loss": shipped_loss, "held_out_perplexity": math.exp(shipped_loss),
                    "held_out_scored_tokens": int(sum(len(b) - 1 for b in held_out_blocks))})
    with open(os.path.join(args.out, "training_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"done: {step} steps, stopped by {stopped_by}; held-out perplexity of the F16 checkpoint "
          f"{math.exp(shipped_loss):.3f}", flush=True)


if __name__ == "__main__":
    main()
