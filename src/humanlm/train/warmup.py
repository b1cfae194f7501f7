"""A short supervised format warm-up, before GRPO or SFT.

A randomly initialised model never writes well-formed tags, so every GRPO reward would be 0 and
the advantages empty. This warm-up teaches the output format of the GRPO modes: the six state
tags, and the response as a thinking block then ``<response>...</response>``
(``build_warmup_dataset``). Its targets are *swapped between writers*:
each prompt gets the reply, reasoning and states that another user wrote on the same post
(``swap_writers``), so the model learns what a well-formed answer looks like in this world but
not which user writes which answer. That is left to the methods compared after it.

The loop is plain rather than TRL's ``SFTTrainer`` for one reason: on a CPU the cost of a tiny
model is its 152k-token vocabulary projection, and TRL's fused head projects every prompt
position there; left-padding each batch puts all targets in the last positions, so
``logits_to_keep`` projects only those (about 30x less work on the demo data).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from datasets import Dataset
from tqdm import tqdm

from humanlm.states import augment_states
from humanlm.states.examples import render_prompt
from humanlm.train.data import sft_target

__all__ = ["WARMUP_FORMATS", "build_warmup_dataset", "run_warmup", "swap_writers"]

logger = logging.getLogger(__name__)


# Tags and the end-of-turn token: the format the warm-up is really about.
_FORMAT_PIECE = re.compile(r"(</?[a-z_]+>|<\|im_end\|>)")


# The formats the warm-up teaches, as (state set, thinking): the six states answered directly and
# the response after a thinking block. The response prompt of ``r`` is the one of ``sebvgcr``, so
# listing it doubles the response rows, the format every evaluation reads.
WARMUP_FORMATS: tuple[tuple[str, bool], ...] = (("sebvgcr", True), ("r", True))
# What a writer contributes to an example; swap_writers exchanges these between users.
_WRITER_FIELDS = ("ground_truth", "trace", "states")


def swap_writers(examples: Sequence[Mapping[str, Any]], *, seed: int = 0) -> list[dict[str, Any]]:
    """Give every example the reply, trace and states of another user on the same post.

    Examples are grouped by ``post_id``; within a post the writers are rotated by a seeded,
    random non-zero offset, so no example keeps its own target. A post with a single reply keeps
    it (there is nobody to swap with); such examples are counted in the log.

    Returns:
        New example dicts: persona and context of the original, target fields of the other user.
    """
    rng = random.Random(seed)
    posts: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        posts.setdefault(str(ex.get("post_id")), []).append(i)
    swapped = [dict(ex) for ex in examples]
    kept = 0
    for rows in posts.values():
        if len(rows) < 2:
            kept += len(rows)
            continue
        offset = rng.randrange(1, len(rows))
        for k, i in enumerate(rows):
            donor = examples[rows[(k + offset) % len(rows)]]
            for name in _WRITER_FIELDS:
                swapped[i][name] = donor.get(name, "")
    if kept:
        logger.info("swap_writers: %d examples are the only reply to their post and keep it", kept)
    return swapped


def build_warmup_dataset(
    examples: Sequence[Mapping[str, Any]],
    *,
    formats: Sequence[tuple[str, bool]] = WARMUP_FORMATS,
    seed: int = 0,
) -> Dataset:
    """Prompt/completion rows of the format warm-up, for every ``(state set, thinking)`` format.

    Targets come from ``swap_writers``. A thinking response's target is the trace, ``</think>``,
    then the tagged reply, so the warm-up teaches a well-formed thinking block; the other targets
    are those of ``sft_target``. Rows of all formats are shuffled together.
    """
    swapped = swap_writers(examples, seed=seed)
    rows = []
    for state_set, thinking in formats:
        for ex, st in augment_states(swapped, state_set=state_set, seed=seed):
            target = sft_target(ex, st, state_set=state_set, thinking=thinking, use_trace=True)
            if target is None:  # no trace: an empty thinking block still teaches the format
                target = sft_target(ex, st, state_set=state_set, thinking=thinking, use_trace=False)
            if target is not None:
                rows.append(
                    {
                        "prompt": render_prompt(ex, st, state_set=state_set, thinking=thinking),
                        "completion": target,
                        "state": st,
                    }
                )
    random.Random(seed).shuffle(rows)
    return Dataset.from_list(rows)


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
    progress: bool = False,
) -> list[float]:
    """Train ``model`` for ``steps`` batches of prompt/completion rows; return the losses.

    Args:
        model: a causal LM with ``get_decoder()`` and ``get_output_embeddings()``.
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
        progress: show a progress bar with the running loss.
    """
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    device = next(model.parameters()).device
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    model.train()
    losses = []
    bar = tqdm(total=steps, desc="warm-up", unit="step", disable=not progress)
    for step in range(1, steps + 1):
        if len(order) < batch_size:
            order += torch.randperm(len(dataset), generator=generator).tolist()
        idx, order = order[:batch_size], order[batch_size:]
        batch = _batch([dataset[i] for i in idx], tokenizer, format_weight=format_weight)
        keep = batch.pop("keep")
        labels = batch.pop("labels").to(device)
        weights = batch.pop("weights").to(device)
        hidden = decoder(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state
        # Project only the positions that carry a target onto the vocabulary: rows of a batch
        # have targets of very different lengths (a state vs a reply with thinking).
        scored = weights > 0
        logits = head(hidden[:, -keep:-1][scored]).float()
        token_loss = F.cross_entropy(logits, labels[scored], reduction="none")
        loss = (token_loss * weights[scored]).sum() / weights.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_log is not None:
            on_log({"step": step, "loss": losses[-1]})
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if step == 1 or step % 10 == 0 or step == steps:
            logger.info("warm-up step %d/%d: loss %.3f", step, steps, losses[-1])
    bar.close()
    model.eval()
    return losses
