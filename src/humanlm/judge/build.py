"""The ``Judge`` interface and ``build_judge``, which turns a spec string into a judge.

Specs:

- ``openai:MODEL`` -- the OpenAI API (key from ``$OPENAI_API_KEY`` unless ``api_key_env`` names
  another variable);
- ``openai:MODEL@BASE_URL`` -- any OpenAI-compatible server (vLLM, SGLang, a local test server);
  a loopback address, or ``api_key_env: none``, needs no key (``humanlm.llm.specs``);
- ``litellm:PROVIDER/MODEL`` -- other providers through the optional litellm package
  (``pip install 'humanlm[litellm]'``); litellm reads the provider's own key variable unless
  ``api_key_env`` names one;
- ``embedding:minilm`` -- offline cosine similarity (no key, no network, no cache).

Example:
    >>> judge = build_judge("openai:gpt-5-mini", temperature=1.0, cache="runs/judge_cache.sqlite")
    ...  # doctest: +SKIP
    >>> verdict = await judge.judge_group(context=ctx, ground_truth=reply, state="stance",
    ...                                   candidates=["backs OP", "sides with the landlord"])
    ...  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from humanlm.config import JudgeConfig
from humanlm.errors import ConfigError
from humanlm.judge.client import LLMJudge
from humanlm.judge.embedding import EmbeddingJudge
from humanlm.judge.verdict import AspectVerdict, GroupVerdict
from humanlm.llm.build import build_backend
from humanlm.llm.cache import LLMCache
from humanlm.llm.ledger import DEFAULT_PRICES, Ledger, Price
from humanlm.llm.limits import RateLimiter, RetryPolicy
from humanlm.llm.specs import ModelSpec
from humanlm.llm.specs import parse_spec as parse_model_spec
from humanlm.states import LATENT_STATES

__all__ = ["Judge", "build_judge", "build_judge_from_config", "parse_spec"]


@runtime_checkable
class Judge(Protocol):
    """What rewards, scorers and the CLI need from a judge (LLM or embedding).

    Attributes:
        name: the spec it was built from, safe to log (``openai:gpt-5-mini``).
        prompt_version: version of the group prompt (or similarity method).
        ledger: calls, tokens, failures and the last reward batch's unscored fraction.
    """

    name: str
    ledger: Ledger

    @property
    def prompt_version(self) -> str: ...

    def gates(self, source: str | None) -> bool:
        """Whether groups of data source ``source`` go through the Chat gate
        (``humanlm.judge.group``)."""
        ...

    async def judge_group(
        self,
        *,
        context: Sequence[Mapping[str, object]],
        ground_truth: str,
        state: str,
        candidates: Sequence[str | None],
        use_cache: bool = True,
        source: str | None = None,
    ) -> GroupVerdict:
        """Score the candidates of one (example, state) group; never raises for a bad reply.
        ``source``: the example's data source, which decides the Chat gate."""
        ...

    async def judge_aspects(
        self,
        *,
        context: Sequence[Mapping[str, object]],
        ground_truth: str,
        response: str | None,
        states: Sequence[str] = LATENT_STATES,
        use_cache: bool = True,
    ) -> AspectVerdict:
        """Score one response on several states in one judgement."""
        ...

    async def aclose(self) -> None:
        """Release connections held for the running event loop."""
        ...


JUDGE_KINDS = ("openai", "litellm", "embedding")


def parse_spec(spec: str) -> ModelSpec:
    """Parse ``openai:MODEL[@BASE_URL]``, ``litellm:PROVIDER/MODEL`` or ``embedding:minilm``.

    Raises:
        ConfigError: the spec has another shape.
    """
    return parse_model_spec(spec, role="judge", kinds=JUDGE_KINDS)


def build_judge(
    spec: str,
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    api_key_env: str | None = None,
    concurrency: int = 16,
    timeout_s: float = 120.0,
    request_timeout_s: float | None = None,
    max_retries: int = 4,
    backoff_s: float = 0.5,
    backoff_max_s: float = 8.0,
    hedge_after_s: float | None = None,
    hedge_quantile: float | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    cache: str | os.PathLike[str] | LLMCache | None = None,
    prices: Mapping[str, Price | tuple[float, float]] | None = None,
    extra_params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    structured_output: bool = True,
    chat_gate: str = "auto",
) -> Judge:
    """Build a judge from a spec string (see the module docstring for the spec forms).

    Args:
        spec: which judge.
        temperature: sampling temperature sent to the judge (``None``: the server's default).
            OpenAI's reasoning models take only 1; another value is not sent to them.
        max_tokens: reply length limit sent to the judge (``None``: not sent); sent as
            ``max_completion_tokens`` to OpenAI's reasoning models.
        api_key_env: name of the environment variable with the key (default ``OPENAI_API_KEY``
            for ``openai:``; the provider's own for ``litellm:``).
        concurrency: judge calls in flight at once.
        timeout_s: overall deadline of one judge call, retries included.
        request_timeout_s: limit of one HTTP request (default: half of ``timeout_s``, so a
            request that never answers still leaves time for one retry).
        max_retries: re-attempts per call after transport or content failures.
        backoff_s, backoff_max_s: first and largest backoff delay.
        hedge_after_s: send one copy of a request still unanswered after this many seconds and
            take the first answer (``None``: never; see ``humanlm.llm.RetryPolicy``).
        hedge_quantile: send the copy after this quantile of the recent latencies instead, with
            ``hedge_after_s`` as the least delay (``None``: fixed delay).
        rpm, tpm: requests / tokens per minute limits (``None``: unlimited).
        cache: SQLite cache path (``""`` or ``None``: no cache) or an open ``LLMCache``.
            The embedding judge ignores it (it is cheaper than a lookup).
        prices: per-model ``Price`` (or ``(input, output)`` USD per 1M tokens) merged over
            ``DEFAULT_PRICES`` for the ledger's cost estimate.
        extra_params: more request fields (``seed``, ``reasoning_effort``, ...), part of the
            cache key.
        seed: seed of the retry jitter.
        structured_output: ask ``openai:`` judges for a JSON object (``response_format``),
            falling back to plain replies where a server refuses the field.
        chat_gate: ``auto`` (gate the chat data sources), ``on`` or ``off``: the Chat gate of
            an LLM judge (``humanlm.judge.group``); an embedding judge never gates.

    Returns:
        An ``LLMJudge`` or an ``EmbeddingJudge``; both satisfy ``Judge``.

    Raises:
        ConfigError: bad spec or settings, missing API key, litellm not installed.
    """
    parsed = parse_spec(spec)
    if concurrency < 1:
        raise ConfigError("judge concurrency: must be >= 1")
    table = dict(DEFAULT_PRICES)
    for model, price in (prices or {}).items():
        table[model] = price if isinstance(price, Price) else Price(*price)
    if parsed.kind == "embedding":
        if chat_gate == "on":
            raise ConfigError("chat_gate: on needs an LLM judge (an embedding judge cannot gate)")
        return EmbeddingJudge(ledger=Ledger(model="minilm", prices=table))
    retry = RetryPolicy(
        max_retries=max_retries,
        timeout_s=timeout_s,
        request_timeout_s=request_timeout_s or timeout_s / 2,
        backoff_s=backoff_s,
        backoff_max_s=backoff_max_s,
        hedge_after_s=hedge_after_s,
        hedge_quantile=hedge_quantile,
    )
    params: dict[str, Any] = dict(extra_params or {})
    if temperature is not None:
        params["temperature"] = temperature
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    backend = build_backend(
        parsed, role="judge", api_key_env=api_key_env, params=params, flag="api_key_env"
    )
    # The fields as sent (``humanlm.llm.params`` fits them to the model): they key the cache and
    # are written with every judged row.
    params = dict(getattr(backend, "params", params))
    if isinstance(cache, str | os.PathLike) and str(cache):
        cache = LLMCache(cache)
    return LLMJudge(
        backend,
        name=parsed.display,
        concurrency=concurrency,
        retry=retry,
        limiter=RateLimiter(rpm=rpm, tpm=tpm),
        cache=cache if isinstance(cache, LLMCache) else None,
        ledger=Ledger(model=parsed.model, prices=table),
        params=params,
        seed=seed,
        structured=structured_output and parsed.kind == "openai",
        chat_gate=chat_gate,
    )


def build_judge_from_config(
    cfg: JudgeConfig,
    *,
    cache: str | os.PathLike[str] | LLMCache | None = None,
    seed: int | None = None,
) -> Judge:
    """``build_judge`` with the settings of a ``judge:`` (or ``eval_judge:``) block.

    The TRL trainer, its validation, evaluation and the verl reward manager all build their
    judge here.

    Args:
        cfg: the judge block.
        cache: a cache to use instead of ``cfg.cache`` (evaluation keeps one per run folder).
        seed: seed of the retry jitter.
    """
    return build_judge(
        cfg.spec,
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        api_key_env=cfg.api_key_env,
        concurrency=cfg.concurrency,
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        hedge_after_s=cfg.hedge_after_s,
        hedge_quantile=cfg.hedge_quantile,
        cache=cache if cache is not None else (cfg.cache or None),
        seed=seed,
        chat_gate=cfg.chat_gate,
    )
