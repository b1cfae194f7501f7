"""No-repeat n-gram ban for ``model.generate``: the evaluation decoding rule of the paper.

At every decoding step, a token that would complete an n-gram already present earlier in the same
row gets a score of ``-inf``. The reference implementation declared this ban but never switched it
on; ours is passed explicitly through ``logits_processor``. The vLLM engine gets the same ban
from ``humanlm.model.vllm_ngram``.

Scope (``NGRAM_BAN_SCOPES``): ``reply``, the default of the evaluation, bans repeats within the
reply only: the thinking block (from the start of the generation up to and including
``</think>``) is neither banned nor counted, so a reply may reuse wording it drafted while
thinking, and an n-gram that straddles ``</think>`` never counts. While a row is still inside
its think block nothing is banned; a row without one (thinking off, where the prompt already
closed an empty block) is all reply. ``all`` bans repeats across every generated token, thinking
included. The ``reply`` scope finds the block by the ids of ``<think>`` and ``</think>``
(``think_token_ids`` reads them from the tokenizer); a tokenizer without them as single tokens
has no think block to skip, and the two scopes agree.

Example:
    >>> from humanlm.model.ngram import ngram_processor_list
    >>> prompt_length = inputs["input_ids"].shape[1]  # doctest: +SKIP
    >>> model.generate(**inputs, logits_processor=ngram_processor_list(4, prompt_length))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

__all__ = [
    "NGRAM_BAN_SCOPES",
    "NoRepeatNGramLogitsProcessor",
    "ban_repeated_ngrams",
    "banned_ngram_tokens",
    "ngram_processor_list",
    "reply_starts",
    "scope_think_ids",
    "think_token_ids",
]

# Which generated tokens the ban covers: the reply after the thinking block, or all of them.
NGRAM_BAN_SCOPES = ("reply", "all")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def think_token_ids(tokenizer: Any) -> tuple[int, int] | None:
    """``(id of <think>, id of </think>)`` in ``tokenizer``, or ``None`` when either is not one
    token of its vocabulary (Qwen3: 151667 and 151668)."""
    ids = []
    for marker in (THINK_OPEN, THINK_CLOSE):
        token_id = tokenizer.convert_tokens_to_ids(marker)
        if not isinstance(token_id, int) or token_id == tokenizer.unk_token_id:
            return None
        ids.append(token_id)
    return ids[0], ids[1]


def scope_think_ids(scope: str, tokenizer: Any) -> tuple[int, int] | None:
    """The ``think_ids`` a processor needs for ``scope``: the markers for ``reply``, else ``None``.

    Raises:
        ValueError: ``scope`` is not one of ``NGRAM_BAN_SCOPES``.
    """
    if scope not in NGRAM_BAN_SCOPES:
        raise ValueError(
            f"ngram ban scope must be one of {', '.join(NGRAM_BAN_SCOPES)}, got {scope!r}"
        )
    return think_token_ids(tokenizer) if scope == "reply" else None


def _last_position(input_ids: torch.Tensor, token: int) -> torch.Tensor:
    """Per row, the last position holding ``token`` (-1 where there is none)."""
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    return torch.where(input_ids == token, positions, -1).max(dim=1).values


def reply_starts(
    input_ids: torch.Tensor, think_ids: tuple[int, int], *, prompt_length: int = 0
) -> torch.Tensor:
    """Per row, the position where its reply starts: the ``reply`` scope of the ban.

    The reply follows the last ``</think>`` of the row (prompt included, so a prompt that closed
    an empty block makes the whole generation reply). While the last marker is ``<think>`` the
    row is still thinking and its start is the row length: nothing is reply yet. Never before
    ``prompt_length``.

    Args:
        input_ids: (batch, length) token ids so far.
        think_ids: ids of ``<think>`` and ``</think>``.
        prompt_length: the first generated position.
    """
    rows, length = input_ids.shape
    if length == 0:
        return torch.full((rows,), prompt_length, dtype=torch.long, device=input_ids.device)
    opened = _last_position(input_ids, think_ids[0])
    closed = _last_position(input_ids, think_ids[1])
    after = (closed + 1).clamp(min=prompt_length)
    return torch.where(opened > closed, torch.full_like(after, length), after)


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Ban every token that would repeat an n-gram seen earlier in its row.

    Args:
        ngram_size: n, the length of the n-grams that may not repeat (4 for our evals).
        prompt_length: number of leading positions to ignore. Pass the (padded) prompt length to
            look for repeats only in the generated text: a reply may then quote its context.
            Because every row of a left-padded batch shares that length, the pad positions are
            ignored with it.
        pad_token_id: when set, n-grams containing this id are ignored. Only needed for
            left-padded batches with ``prompt_length=0``.
        think_ids: ids of ``<think>`` and ``</think>``: ban within each row's reply only (the
            ``reply`` scope, ``reply_starts``); ``None``: every position from ``prompt_length``
            (the ``all`` scope). ``scope_think_ids`` gives the right value for a scope.

    Raises:
        ValueError: ``ngram_size`` is not a positive integer or ``prompt_length`` is negative.
    """

    def __init__(
        self,
        ngram_size: int,
        *,
        prompt_length: int = 0,
        pad_token_id: int | None = None,
        think_ids: tuple[int, int] | None = None,
    ):
        if not isinstance(ngram_size, int) or ngram_size < 1:
            raise ValueError(f"ngram_size must be a positive integer, got {ngram_size!r}")
        if not isinstance(prompt_length, int) or prompt_length < 0:
            raise ValueError(f"prompt_length must be a non-negative integer, got {prompt_length!r}")
        self.ngram_size = ngram_size
        self.prompt_length = prompt_length
        self.pad_token_id = pad_token_id
        self.think_ids = think_ids

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Return a copy of ``scores`` (batch x vocab) with the banned tokens set to ``-inf``."""
        starts = None
        if self.think_ids is not None:
            starts = reply_starts(input_ids, self.think_ids, prompt_length=self.prompt_length)
        return ban_repeated_ngrams(
            input_ids,
            scores,
            self.ngram_size,
            prompt_length=self.prompt_length,
            pad_token_id=self.pad_token_id,
            reply_start=starts,
        )


def banned_ngram_tokens(
    input_ids: torch.Tensor,
    ngram_size: int,
    *,
    prompt_length: int = 0,
    pad_token_id: int | None = None,
    reply_start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which tokens each row may not take next: ``(rows, tokens)`` index pairs.

    The core of the ban, shared by the transformers and the vLLM processors.

    Args:
        input_ids: (batch, length) token ids so far.
        ngram_size, prompt_length, pad_token_id: as for ``NoRepeatNGramLogitsProcessor``.
        reply_start: (batch,) per row, the first position that counts (``reply_starts``): an
            n-gram starting before it is not counted, and a row whose last ``n - 1`` tokens
            reach before it bans nothing (the n-gram its next token completes would straddle
            the start). ``None``: ``prompt_length`` for every row.
    """
    n = ngram_size
    seen = input_ids[:, prompt_length:]
    if seen.shape[1] < n:
        empty = torch.empty(0, dtype=torch.long, device=input_ids.device)
        return empty, empty
    # Every complete n-gram of the row starts before the last n-1 tokens, so all of them
    # count as "earlier"; the one whose first n-1 tokens equal that suffix names a banned token.
    ngrams = seen.unfold(1, n, 1)  # (batch, windows, n)
    suffix = seen[:, seen.shape[1] - n + 1 :]  # (batch, n-1)
    matches = (ngrams[:, :, :-1] == suffix[:, None, :]).all(dim=-1)
    if pad_token_id is not None:
        matches &= (ngrams != pad_token_id).all(dim=-1)
    if reply_start is not None:
        window_starts = prompt_length + torch.arange(ngrams.shape[1], device=input_ids.device)
        starts = reply_start.to(input_ids.device)[:, None]
        suffix_inside = input_ids.shape[1] - starts >= n - 1
        matches &= (window_starts[None, :] >= starts) & suffix_inside
    rows, windows = matches.nonzero(as_tuple=True)
    return rows, ngrams[rows, windows, -1]


def ban_repeated_ngrams(
    input_ids: torch.Tensor,
    scores: torch.Tensor,
    ngram_size: int,
    *,
    prompt_length: int = 0,
    pad_token_id: int | None = None,
    reply_start: torch.Tensor | None = None,
) -> torch.Tensor:
    """``scores`` (batch x vocab) itself when nothing is banned, else a copy with the banned
    tokens at ``-inf`` (``scores`` is not modified)."""
    rows, tokens = banned_ngram_tokens(
        input_ids,
        ngram_size,
        prompt_length=prompt_length,
        pad_token_id=pad_token_id,
        reply_start=reply_start,
    )
    if rows.numel() == 0:
        return scores
    banned = scores.clone()
    banned[rows, tokens] = -float("inf")
    return banned


def ngram_processor_list(
    ngram_size: int,
    prompt_length: int = 0,
    *,
    pad_token_id: int | None = None,
    think_ids: tuple[int, int] | None = None,
) -> LogitsProcessorList:
    """A ``LogitsProcessorList`` holding one NoRepeatNGramLogitsProcessor, for ``generate``."""
    return LogitsProcessorList(
        [
            NoRepeatNGramLogitsProcessor(
                ngram_size,
                prompt_length=prompt_length,
                pad_token_id=pad_token_id,
                think_ids=think_ids,
            )
        ]
    )
