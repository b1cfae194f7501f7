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
import re
from collections.abc import Callable
from typing import Any

from datasets import Dataset

__all__ = ["run_warmup"]

logger = logging.getLogger(__name__)


# Tags and the end-of-turn token: the format the warm-up is really about.
_FORMAT_PIECE = re.compile(r"(</?[a-z_]+>|<\|im_end\|>)")


def _encode_target(
    text: str, tokenizer: Any, *, format_weight: float
) -> tuple[list[int], list[float]]:
    # Tokenised piece by piece so every token is known to be format or content.
    ids: list[int] = []
    weights: list[float] = []
    for piece in _FORMAT_PIECE.split(text):
        if not piece:
            continue
        piece_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
        weight = format_weight if _FORMAT_PIECE.fullmatch(piece) else 1.0
        ids += piece_ids
        weights += [weight] * len(piece_ids)
    return ids, weights


def _batch(rows: list[dict[str, str]], tokenizer: Any, *, format_weight: float) -> dict[str, Any]:
    import torch

    seqs, targets = [], []
    for row in rows:
        prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        target, weights = _encode_target(row["completion"], tokenizer, format_weight=format_weight)
        seqs.append(prompt + target)
        targets.append((target, weights))
    width = max(len(s) for s in seqs)
    keep = max(len(t) for t, _ in targets) + 1
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs])
    attention = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    # Targets of the last `keep` positions (position i predicts token i+1); weight 0 elsewhere.
    labels = torch.zeros((len(rows), keep - 1), dtype=torch.long)
    weights = torch.zeros((len(rows), keep - 1))
    for i, (target, w) in enumerate(targets):
        labels[i, keep - 1 - len(target) :] = torch.tensor(target)
        weights[i, keep - 1 - len(target) :] = torch.tensor(w)
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "labels": labels,
        "weights": weights,
        "keep": keep,
    }


def run_warmup(
    *,
    model: Any,
    tokenizer: Any,
    dataset: Dataset,
    steps: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    format_weight: float = 5.0,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> list[float]:
    """Train ``model`` for ``steps`` batches of prompt/completion rows; return the losses.

    Args:
        model: a causal LM whose forward accepts ``logits_to_keep``.
        tokenizer: its tokenizer (pad token set).
        dataset: rows with ``prompt`` (rendered text) and ``completion`` (target text).
        steps: optimizer steps; the rows are cycled in a seeded random order.
        learning_rate: AdamW learning rate (constant).
        batch_size: rows per step.
        seed: order of the rows.
        format_weight: loss weight of tag and end-of-turn tokens relative to content tokens.
            A tiny model must find the requested state hundreds of tokens back in the system
            prompt; weighting the format tokens makes it learn that within a few hundred steps.
        on_log: called with ``{"step", "loss"}`` after every step.
    """
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    device = next(model.parameters()).device
    model.train()
    losses = []
    for step in range(1, steps + 1):
        if len(order) < batch_size:
            order += torch.randperm(len(dataset), generator=generator).tolist()
        idx, order = order[:batch_size], order[batch_size:]
        batch = _batch([dataset[i] for i in idx], tokenizer, format_weight=format_weight)
        keep = batch.pop("keep")
        labels = batch.pop("labels").to(device)
        weights = batch.pop("weights").to(device)
        out = model(**{k: v.to(device) for k, v in batch.items()}, logits_to_keep=keep)
        logits = out.logits[:, :-1].float()
        token_loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels.reshape(-1), reduction="none"
        ).view_as(weights)
        loss = (token_loss * weights).sum() / weights.sum()
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
