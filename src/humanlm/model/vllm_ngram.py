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
  does this with ``simulator.ngram_xargs: true``).

Requests without the argument (or with 0) are left alone. vLLM is imported lazily: without it
the module still imports, and the class behaves the same on stand-in batch updates (tests).

Request arguments (``extra_args`` offline, ``vllm_xargs`` on the server; scalars only, which
every vLLM release's server accepts):

- ``no_repeat_ngram_size`` (``XARG``): n; 0 or absent: no ban;
- ``ngram_ban_scope`` (``SCOPE_XARG``): ``reply`` bans repeats within the reply only, after the
  thinking block (``humanlm.model.ngram``); ``all`` bans them across every generated token.
  Absent: ``all``, the meaning of a request that names no scope. Our simulators always send it;
- ``think_start_token_id`` / ``think_end_token_id`` (``THINK_START_XARG`` / ``THINK_END_XARG``):
  the ids of ``<think>`` and ``</think>`` for the ``reply`` scope (Qwen3: 151667 and 151668;
  ``humanlm.model.ngram.think_token_ids`` reads them from a tokenizer). Absent: the ids of the
  engine's own tokenizer, read once when a ``reply`` request first needs them. A request whose
  prompt ends inside an open think block (thinking on) is thinking until ``</think>`` appears.

For example ``{"no_repeat_ngram_size": 4, "ngram_ban_scope": "reply", "think_start_token_id":
151667, "think_end_token_id": 151668}``.

Batch bookkeeping follows vLLM's persistent batch (``vllm/v1/sample/logits_processor``):
``update_state`` gets a ``BatchUpdate`` (``batch_size``, ``removed``, ``added``, ``moved``) or
``None``; updates are applied as vLLM's own sparse processors apply them: added, then removed,
then moved, where a move is one-way (``a -> b``, whatever sat at ``b`` is dropped) or a swap.
Each added entry carries a live reference to the request's output token list, so the processor
always reads the tokens generated so far.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from humanlm.model.ngram import NGRAM_BAN_SCOPES, banned_ngram_tokens, reply_starts, think_token_ids

__all__ = [
    "SCOPE_XARG",
    "THINK_END_XARG",
    "THINK_START_XARG",
    "XARG",
    "NGramBanLogitsProcessor",
    "RequestNGramBan",
    "ngram_xargs",
    "requested_ngram_size",
    "requested_scope",
]

logger = logging.getLogger(__name__)

# The request arguments (``extra_args`` / ``vllm_xargs`` keys): the ban's size, its scope and
# the think markers of the ``reply`` scope.
XARG = "no_repeat_ngram_size"
SCOPE_XARG = "ngram_ban_scope"
THINK_START_XARG = "think_start_token_id"
THINK_END_XARG = "think_end_token_id"


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


def _token_id(extra: dict[str, Any], key: str) -> int | None:
    value = extra.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{key} must be a non-negative integer token id, got {value!r}")
    try:
        token_id = int(value)
    except ValueError:
        raise ValueError(f"{key} must be a non-negative integer token id, got {value!r}") from None
    if token_id < 0:
        raise ValueError(f"{key} must be a non-negative integer token id, got {value!r}")
    return token_id


def requested_scope(params: Any) -> tuple[str, tuple[int, int] | None]:
    """The scope a request asks for and the think marker ids it gives (``None``: not given).

    Raises:
        ValueError: an unknown scope, a malformed id, or only one of the two ids.
    """
    extra = getattr(params, "extra_args", None) or {}
    scope = extra.get(SCOPE_XARG) or "all"
    if scope not in NGRAM_BAN_SCOPES:
        raise ValueError(
            f"{SCOPE_XARG} must be one of {', '.join(NGRAM_BAN_SCOPES)}, got {scope!r}"
        )
    start, end = _token_id(extra, THINK_START_XARG), _token_id(extra, THINK_END_XARG)
    if (start is None) != (end is None):
        raise ValueError(f"give both {THINK_START_XARG} and {THINK_END_XARG}, or neither")
    return scope, (start, end) if start is not None and end is not None else None


def ngram_xargs(
    ngram_size: int, scope: str = "reply", think_ids: tuple[int, int] | None = None
) -> dict[str, int | str]:
    """The request arguments that ask for the ban (``{}`` for size 0): what a client sends as
    ``extra_args`` (offline engine) or ``vllm_xargs`` (server).

    Args:
        ngram_size: n (0: no ban).
        scope: ``reply`` or ``all``.
        think_ids: ids of ``<think>`` and ``</think>`` for the ``reply`` scope (``None``: the
            server uses its own tokenizer's).
    """
    if not ngram_size:
        return {}
    args: dict[str, int | str] = {XARG: ngram_size, SCOPE_XARG: scope}
    if scope == "reply" and think_ids is not None:
        args[THINK_START_XARG], args[THINK_END_XARG] = think_ids
    return args


class RequestNGramBan:
    """The ban for one request: ``ban(output_ids, logits_row) -> logits_row``.

    Args:
        ngram_size: n (4 for the paper's evaluation).
        think_ids: ids of ``<think>`` and ``</think>``: ban within the reply only (``reply``
            scope); ``None``: across every generated token (``all``).
        thinking_at_start: the prompt ends inside an open think block (thinking on): the output
            is thinking until its first ``</think>``.
    """

    def __init__(
        self,
        ngram_size: int,
        *,
        think_ids: tuple[int, int] | None = None,
        thinking_at_start: bool = False,
    ):
        self.ngram_size = ngram_size
        self.think_ids = think_ids
        # The prompt's state, carried as one marker before the output: reply_starts then reads
        # prompt and output the way the transformers processor reads a whole row.
        self._prefix = [think_ids[0]] if think_ids is not None and thinking_at_start else []

    def __call__(self, output_ids: Sequence[int], logits: torch.Tensor) -> torch.Tensor:
        """Set the banned tokens of ``logits`` (one row, modified in place) to ``-inf``."""
        if len(output_ids) < self.ngram_size:
            return logits
        # The matching runs on the CPU (the ids are a Python list there); only the few banned
        # ids travel to the logits' device.
        prefix = len(self._prefix)
        ids = torch.tensor([[*self._prefix, *output_ids]], dtype=torch.long)
        starts = None
        if self.think_ids is not None:
            starts = reply_starts(ids, self.think_ids, prompt_length=prefix)
        _rows, tokens = banned_ngram_tokens(
            ids, self.ngram_size, prompt_length=prefix, reply_start=starts
        )
        if tokens.numel():
            logits[tokens.to(logits.device)] = -float("inf")
        return logits


def _thinking_at_start(prompt_ids: Sequence[int] | None, think_ids: tuple[int, int]) -> bool:
    """Whether the prompt's last think marker opens a block (``None``: no prompt ids, no block)."""
    for token in reversed(prompt_ids or ()):
        if token in think_ids:
            return token == think_ids[0]
    return False


class NGramBanLogitsProcessor(_vllm_base()):  # type: ignore[misc]
    """vLLM V1 logits processor: the no-repeat n-gram ban for requests that ask for it.

    Args:
        vllm_config, device, is_pin_memory: what vLLM passes to every logits processor (unused).
    """

    def __init__(self, vllm_config: Any = None, device: Any = None, is_pin_memory: bool = False):
        # batch row -> (the request's ban, a live reference to its output token ids)
        self.requests: dict[int, tuple[RequestNGramBan, list[int]]] = {}
        self.vllm_config = vllm_config
        self._engine_think_ids: tuple[int, int] | None | bool = False  # False: not read yet

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        """Refuse malformed ban arguments when the request arrives."""
        requested_ngram_size(sampling_params)
        requested_scope(sampling_params)

    def engine_think_ids(self) -> tuple[int, int] | None:
        """The think marker ids of the engine's tokenizer (read once), or ``None`` without them."""
        if self._engine_think_ids is False:
            self._engine_think_ids = _read_think_ids(self.vllm_config)
            if self._engine_think_ids is None:
                logger.warning(
                    "n-gram ban: the engine's tokenizer has no <think>/</think> tokens; requests "
                    "with scope reply and no %s are banned across their whole output",
                    THINK_END_XARG,
                )
        return self._engine_think_ids  # type: ignore[return-value]

    def _ban_for(self, params: Any, prompt_ids: Sequence[int] | None) -> RequestNGramBan | None:
        size = requested_ngram_size(params)
        if not size:
            return None
        scope, think_ids = requested_scope(params)
        if scope == "all":
            return RequestNGramBan(size)
        think_ids = think_ids or self.engine_think_ids()
        if think_ids is None:
            return RequestNGramBan(size)
        return RequestNGramBan(
            size, think_ids=think_ids, thinking_at_start=_thinking_at_start(prompt_ids, think_ids)
        )

    def is_argmax_invariant(self) -> bool:
        """Banning tokens can change the argmax, so greedy decoding needs it too."""
        return False

    def update_state(self, batch_update: Any) -> None:
        """Follow the batch: ``None`` means the rows are unchanged (tokens were appended)."""
        if not batch_update:
            return
        for index, params, prompt_ids, output_ids in batch_update.added:
            ban = self._ban_for(params, prompt_ids)
            if ban is not None:
                self.requests[index] = (ban, output_ids)
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


def _read_think_ids(vllm_config: Any) -> tuple[int, int] | None:
    """``<think>``/``</think>`` ids of the tokenizer named by ``vllm_config.model_config``."""
    model_config = getattr(vllm_config, "model_config", None)
    name = getattr(model_config, "tokenizer", None) or getattr(model_config, "model", None)
    if not name:
        return None
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(
            name,
            revision=getattr(model_config, "tokenizer_revision", None),
            trust_remote_code=bool(getattr(model_config, "trust_remote_code", False)),
        )
    except (OSError, ValueError) as err:
        logger.warning("n-gram ban: cannot read the tokenizer %s (%s)", name, err)
        return None
    return think_token_ids(tokenizer)


def _is_swap(direction: Any) -> bool:
    # vLLM's MoveDirectionality enum has members UNIDIRECTIONAL and SWAP.
    return getattr(direction, "name", direction) == "SWAP"
