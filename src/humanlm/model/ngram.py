"""No-repeat n-gram ban for ``model.generate``: the evaluation decoding rule of the paper.

At every decoding step, a token that would complete an n-gram already present earlier in the same
row gets a score of ``-inf``. The reference implementation declared this ban but never switched it
on; ours is passed explicitly through ``logits_processor``. The vLLM engine gets the same ban
from ``humanlm.model.vllm_ngram``.

Example:
    >>> from humanlm.model.ngram import ngram_processor_list
    >>> prompt_length = inputs["input_ids"].shape[1]  # doctest: +SKIP
    >>> model.generate(**inputs, logits_processor=ngram_processor_list(4, prompt_length))  # doctest: +SKIP
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor, LogitsProcessorList

__all__ = [
    "NoRepeatNGramLogitsProcessor",
    "ban_repeated_ngrams",
    "banned_ngram_tokens",
    "ngram_processor_list",
]


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

    Raises:
        ValueError: ``ngram_size`` is not a positive integer or ``prompt_length`` is negative.
    """

    def __init__(self, ngram_size: int, *, prompt_length: int = 0, pad_token_id: int | None = None):
        if not isinstance(ngram_size, int) or ngram_size < 1:
            raise ValueError(f"ngram_size must be a positive integer, got {ngram_size!r}")
        if not isinstance(prompt_length, int) or prompt_length < 0:
            raise ValueError(f"prompt_length must be a non-negative integer, got {prompt_length!r}")
        self.ngram_size = ngram_size
        self.prompt_length = prompt_length
        self.pad_token_id = pad_token_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Return a copy of ``scores`` (batch x vocab) with the banned tokens set to ``-inf``."""
        return ban_repeated_ngrams(
            input_ids,
            scores,
            self.ngram_size,
            prompt_length=self.prompt_length,
            pad_token_id=self.pad_token_id,
        )


def banned_ngram_tokens(
    input_ids: torch.Tensor,
    ngram_size: int,
    *,
    prompt_length: int = 0,
    pad_token_id: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which tokens each row may not take next: ``(rows, tokens)`` index pairs.

    The core of the ban, shared by the transformers and the vLLM processors.

    Args:
        input_ids: (batch, length) token ids so far.
        ngram_size, prompt_length, pad_token_id: as for ``NoRepeatNGramLogitsProcessor``.
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
    rows, windows = matches.nonzero(as_tuple=True)
    return rows, ngrams[rows, windows, -1]


def ban_repeated_ngrams(
    input_ids: torch.Tensor,
    scores: torch.Tensor,
    ngram_size: int,
    *,
    prompt_length: int = 0,
    pad_token_id: int | None = None,
) -> torch.Tensor:
    """``scores`` (batch x vocab) itself when nothing is banned, else a copy with the banned
    tokens at ``-inf`` (``scores`` is not modified)."""
    rows, tokens = banned_ngram_tokens(
        input_ids, ngram_size, prompt_length=prompt_length, pad_token_id=pad_token_id
    )
    if rows.numel() == 0:
        return scores
    banned = scores.clone()
    banned[rows, tokens] = -float("inf")
    return banned


def ngram_processor_list(
    ngram_size: int, prompt_length: int = 0, *, pad_token_id: int | None = None
) -> LogitsProcessorList:
    """A ``LogitsProcessorList`` holding one NoRepeatNGramLogitsProcessor, for ``generate``."""
    return LogitsProcessorList(
        [
            NoRepeatNGramLogitsProcessor(
                ngram_size, prompt_length=prompt_length, pad_token_id=pad_token_id
            )
        ]
    )
