"""The no-repeat n-gram ban as a vLLM V1 logits processor, switched on per request.

vLLM V1 takes custom logits processors per engine, not per request: a processor class is loaded
when the engine starts and each request opts in through ``SamplingParams.extra_args`` (offline)
or ``vllm_xargs`` (the OpenAI-compatible server). The ban applied here is the one of
``humanlm.model.ngram`` (the same matching code, ``banned_ngram_tokens``, tested against brute
force), on each request's generated tokens only, as the ``hf:`` backend does.

Load it:

- offline engine: ``LLM(model=..., logits_processors=[NGramBanLogitsProcessor])`` and
  ``SamplingParams(extra_args={"no_repeat_ngram_size": 4})`` (the ``vllm:`` simulator does this);
- server: ``vllm serve MODEL --logits-processors humanlm.model.vllm_ngram:NGramBanLogitsProcessor``
  (humanlm must be importable in the server's environment), then send
  ``"vllm_xargs": {"no_repeat_ngram_size": 4}`` in each request body (the ``openai:`` simulator
  does this with ``simulator_ngram_xargs: true``).

Requests without the argument (or with 0) are left alone. vLLM is imported lazily: without it
the module still imports, and the class behaves the same on stand-in batch updates (tests).

Batch bookkeeping follows vLLM's persistent batch (``vllm/v1/sample/logits_processor``):
``update_state`` gets a ``BatchUpdate`` (``batch_size``, ``removed``, ``added``, ``moved``) or
``None``; updates are applied as vLLM's own sparse processors apply them: added, then removed,
then moved, where a move is one-way (``a -> b``, whatever sat at ``b`` is dropped) or a swap.
Each added entry carries a live reference to the request's output token list, so the processor
always reads the tokens generated so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from humanlm.model.ngram import banned_ngram_tokens

__all__ = ["XARG", "NGramBanLogitsProcessor", "RequestNGramBan", "requested_ngram_size"]

# The request argument (``extra_args`` / ``vllm_xargs`` key) that switches the ban on.
XARG = "no_repeat_ngram_size"


def _vllm_base() -> type:
    """vLLM's ``LogitsProcessor`` base when vLLM is installed (it checks the subclass), else object."""
    try:
        from vllm.v1.sample.logits_processor import LogitsProcessor
    except ImportError:
        return object
    return LogitsProcessor


def requested_ngram_size(params: Any) -> int:
    """The n-gram size a request asks for in ``params.extra_args`` (0: none).

    Raises:
        ValueError: the value is not a non-negative integer (vLLM turns this into HTTP 400).
    """
    extra = getattr(params, "extra_args", None) or {}
    value = extra.get(XARG)
    if value is None:
        return 0
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{XARG} must be a non-negative integer, got {value!r}") from None
    if size < 0 or isinstance(value, bool) or (isinstance(value, float) and value != size):
        raise ValueError(f"{XARG} must be a non-negative integer, got {value!r}")
    return size


class RequestNGramBan:
    """The ban for one request: ``ban(output_ids, logits_row) -> logits_row``.

    Args:
        ngram_size: n (4 for the paper's evaluation).
    """

    def __init__(self, ngram_size: int):
        self.ngram_size = ngram_size

    def __call__(self, output_ids: Sequence[int], logits: torch.Tensor) -> torch.Tensor:
        """Set the banned tokens of ``logits`` (one row, modified in place) to ``-inf``."""
        if len(output_ids) < self.ngram_size:
            return logits
        # The matching runs on the CPU (the ids are a Python list there); only the few banned
        # ids travel to the logits' device.
        ids = torch.tensor([list(output_ids)], dtype=torch.long)
        _rows, tokens = banned_ngram_tokens(ids, self.ngram_size)
        if tokens.numel():
            logits[tokens.to(logits.device)] = -float("inf")
        return logits


class NGramBanLogitsProcessor(_vllm_base()):  # type: ignore[misc]
    """vLLM V1 logits processor: the no-repeat n-gram ban for requests that ask for it.

    Args:
        vllm_config, device, is_pin_memory: what vLLM passes to every logits processor (unused).
    """

    def __init__(self, vllm_config: Any = None, device: Any = None, is_pin_memory: bool = False):
        # batch row -> (the request's ban, a live reference to its output token ids)
        self.requests: dict[int, tuple[RequestNGramBan, list[int]]] = {}

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        """Refuse a malformed ``no_repeat_ngram_size`` when the request arrives."""
        requested_ngram_size(sampling_params)

    def is_argmax_invariant(self) -> bool:
        """Banning tokens can change the argmax, so greedy decoding needs it too."""
        return False

    def update_state(self, batch_update: Any) -> None:
        """Follow the batch: ``None`` means the rows are unchanged (tokens were appended)."""
        if not batch_update:
            return
        for index, params, _prompt_ids, output_ids in batch_update.added:
            size = requested_ngram_size(params)
            if size:
                self.requests[index] = (RequestNGramBan(size), output_ids)
            else:  # a request without the ban takes a row that may have had one
                self.requests.pop(index, None)
        if not self.requests:
            return
        for index in batch_update.removed:
            self.requests.pop(index, None)
        for a, b, direction in batch_update.moved:
            a_entry, b_entry = self.requests.pop(a, None), self.requests.pop(b, None)
            if a_entry is not None:
                self.requests[b] = a_entry
            if b_entry is not None and _is_swap(direction):
                self.requests[a] = b_entry

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Ban the repeating tokens in the rows of requests that asked; the rest is untouched."""
        for index, (ban, output_ids) in self.requests.items():
            ban(output_ids, logits[index])  # a view: banned in place
        return logits


def _is_swap(direction: Any) -> bool:
    # vLLM's MoveDirectionality enum has members UNIDIRECTIONAL and SWAP.
    return getattr(direction, "name", direction) == "SWAP"
