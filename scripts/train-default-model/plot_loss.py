"""Draws the training and held-out loss curves from `training_metrics.json` into `loss_curve.png` beside it.

    /path/to/venv/bin/python scripts/train-default-model/plot_loss.py models/gpt-neo-kjv-8m
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def moving_average(values, width):
    out = []
    for i in range(len(values)):
        window = values[max(0, i - width + 1):i + 1]
        out.append(sum(window) / len(window))
    return out


def main(model_dir):
    with open(os.path.join(model_dir, "training_metrics.json")) as f:
        metrics = json.load(f)
    train = metrics["history"]["train"]
    held_out = metrics["history"]["held_out"]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    steps = [p["step"] for p in train]
    losses = [p["loss"] for p in train]
    axes.plot(steps, losses, color="#9ecae1", linewidth=0.8, label="training batch loss")
    axes.plot(steps, moving_average(losses, 20), color="#3182bd", linewidth=1.6, label="training (mean of 20 steps)")
    axes.plot([p["step"] for p in held_out], [p["loss"] for p in held_out], "o-", color="#e6550d",
              markersize=3.5, label="held-out (first %d blocks of 512 tokens)" % metrics["arguments"]["eval_blocks"])
    if "held_out_perplexity" in metrics:
        axes.set_title(f"GPT-Neo on the King James Bible: held-out perplexity {metrics['held_out_perplexity']:.2f}",
                       fontsize=10)
    axes.set_xlabel("step (%d tokens each)" % (metrics["arguments"]["batch_size"] * metrics["arguments"]["context"]))
    axes.set_ylabel("cross-entropy (nats per token)")
    axes.set_ylim(bottom=max(0.0, min(losses + [p["loss"] for p in held_out]) - 0.3), top=min(11.0, max(losses) + 0.2))
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(model_dir, "loss_curve.png"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join("models", "gpt-neo-kjv-8m"))
