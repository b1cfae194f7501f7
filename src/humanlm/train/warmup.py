"""A short supervised warm-up on tagged targets, before GRPO.

A randomly initialised model never writes well-formed tags, so every GRPO reward would be 0 and
the advantages empty. This warm-up teaches the output format on the training split's reference
states and replies. It is a plain loop rather than TRL's ``SFTTrainer`` for one reason: on a CPU
the cost of a tiny model is its 152k-token vocabulary projection, and TRL's fused head projects
every prompt position there; left-padding each batch puts all targets in the last positions, so
``logits_to_keep`` projects only those (about 30x less work on the demo data).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from datasets import Dataset

__all__ = ["run_warmup"]

logger = logging.getLogger(__name__)


def _batch(rows: list[dict[str, str]], tokenizer: Any) -> dict[str, Any]:
    import torch

    seqs, targets = [], []
    for row in rows:
        prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        target = tokenizer(row["completion"], add_special_tokens=False)["input_ids"]
        seqs.append(prompt + target)
        targets.append(len(target))
    width = max(len(s) for s in seqs)
    keep = max(targets) + 1
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs])
    attention = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    # labels for the last `keep` positions: position i predicts token i+1.
    labels = torch.full((len(rows), keep - 1), -100)
    for i, n in enumerate(targets):
        labels[i, keep - 1 - n :] = input_ids[i, width - n :]
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "keep": keep}


def run_warmup(
    *,
    model: Any,
    tokenizer: Any,
    dataset: Dataset,
    steps: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> list[float]:
    """Train ``model`` for ``steps`` batches of prompt/completion rows; return the losses.

    Args:
        model: a causal LM whose forward accepts ``logits_to_keep``.
        tokenizer: its tokenizer (pad token set).
        dataset: rows with ``prompt`` (rendered text), ``completion`` (target text) and ``state``.
        steps: optimizer steps; each state's rows are cycled in a seeded order.
        learning_rate: AdamW learning rate (constant).
        batch_size: rows per step.
        seed: order of the rows.
        on_log: called with ``{"step", "loss"}`` after every step.
    """
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    # One state per batch: states have short targets, the response a long one, and a batch costs
    # as much as its longest target. Batches cycle through the states in turn.
    pools: dict[str, list[int]] = {}
    for i, state in enumerate(dataset["state"]):
        pools.setdefault(state, []).append(i)
    states = sorted(pools)
    queues: dict[str, list[int]] = {s: [] for s in states}
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    device = next(model.parameters()).device
    model.train()
    losses = []
    for step in range(1, steps + 1):
        state = states[(step - 1) % len(states)]
        queue = queues[state]
        while len(queue) < batch_size:
            perm = torch.randperm(len(pools[state]), generator=generator).tolist()
            queue += [pools[state][j] for j in perm]
        idx, queues[state] = queue[:batch_size], queue[batch_size:]
        batch = _batch([dataset[i] for i in idx], tokenizer)
        keep = batch.pop("keep")
        labels = batch.pop("labels").to(device)
        out = model(**{k: v.to(device) for k, v in batch.items()}, logits_to_keep=keep)
        logits = out.logits[:, :-1].float()
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_log is not None:
            on_log({"step": step, "loss": losses[-1]})
        if step == 1 or step % 10 == 0 or step == steps:
            logger.info("warm-up step %d/%d: loss %.3f", step, steps, losses[-1])
    model.eval()
    return losses
