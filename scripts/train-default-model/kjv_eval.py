"""Held-out scoring shared by the training script and the fixture generator, so both report one figure.

The held-out token stream is cut into consecutive blocks of the context length; each block is scored as its
own sequence (its first token has no prediction). The loss is the mean negative log-likelihood in nats over
all predicted tokens, and the perplexity its exponential: the same quantity the server reports through
`echo` + `logprobs` with `max_tokens` 0.
"""

import numpy as np
import torch


def blocks(stream: np.ndarray, context: int) -> list:
    return [stream[i:i + context] for i in range(0, len(stream) - 1, context) if len(stream[i:i + context]) > 1]


@torch.no_grad()
def summed_negative_log_likelihood(model, block: np.ndarray) -> tuple:
    """(sum of -log p(token | prefix) over the block's predicted tokens, their count), in float64."""
    ids = torch.from_numpy(np.asarray(block, dtype=np.int64))[None, :]
    logits = model(input_ids=ids).logits[0, :-1].double()
    log_probs = torch.log_softmax(logits, dim=-1)
    targets = ids[0, 1:]
    return -log_probs[torch.arange(len(targets)), targets].sum().item(), len(targets)


def mean_loss(model, scored_blocks: list) -> float:
    total, count = 0.0, 0
    for block in scored_blocks:
        nll, n = summed_negative_log_likelihood(model, block)
        total += nll
        count += n
    return total / count
