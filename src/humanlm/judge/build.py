"""The ``Judge`` interface and ``build_judge``, which turns a ``JudgeConfig`` into a judge.

Specs:

- ``openai:MODEL`` -- the OpenAI API (key from ``$OPENAI_API_KEY`` unless ``api_key_env`` names
  another variable);
- ``openai:MODEL@BASE_URL`` -- any OpenAI-compatible server (vLLM, SGLang, a local test server);
  a loopback address, or ``api_key_env: none``, needs no key (``humanlm.llm.specs``);
- ``litellm:PROVIDER/MODEL`` -- other providers through the optional litellm package
  (``pip install 'humanlm[litellm]'``); litellm reads the provider's own key variable unless
  ``api_key_env`` names one;
- ``embedding:minilm`` -- offline cosine similarity (no key, no network, no cache);
- ``embedding:demo-world`` -- the demo's judge: MiniLM, latent states scored against the demo
  world's reference states (``humanlm.judge.world``).

Example:
    >>> judge = build_judge(JudgeConfig("openai:gpt-5-mini", cache="runs/judge_cache.sqlite"))
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
from humanlm.judge.world import WorldJudge
from humanlm.llm.build import build_backend
from humanlm.llm.cache import LLMCache
from humanlm.llm.ledger import DEFAULT_PRICES, Ledger, Price
from humanlm.llm.limits import RateLimiter
from humanlm.llm.specs import ModelSpec
from humanlm.llm.specs import parse_spec as parse_model_spec
from humanlm.states import LATENT_STATES

__all__ = ["Judge", "build_judge", "parse_spec"]


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
    cfg: JudgeConfig,
    *,
    cache: str | os.PathLike[str] | LLMCache | None = None,
    seed: int | None = None,
) -> Judge:
    """Build the judge a ``JudgeConfig`` describes: the one way to make a judge.

    The TRL trainer, its validation, evaluation, ``humanlm judge``, the demo and the verl reward
    manager all build their judge here, so every setting of the block reaches the judge.

    Args:
        cfg: the judge's settings (spec, sampling, limits, cache, Chat gate; see ``JudgeConfig``).
        cache: a cache path or an open ``LLMCache`` to use instead of ``cfg.cache`` (evaluation
            keeps one per run folder).
        seed: seed of the retry jitter.

    Returns:
        An ``LLMJudge`` or an ``EmbeddingJudge``; both satisfy ``Judge``.

    Raises:
        ConfigError: bad spec or settings, missing API key, litellm not installed.
    """
    parsed = parse_spec(cfg.spec)
    table = dict(DEFAULT_PRICES)
    table.update({model: Price(*price) for model, price in cfg.prices.items()})
    if parsed.kind == "embedding":
        if cfg.chat_gate == "on":
            raise ConfigError("chat_gate: on needs an LLM judge (an embedding judge cannot gate)")
        judge = WorldJudge if parsed.model == "demo-world" else EmbeddingJudge
        return judge(ledger=Ledger(model="minilm", prices=table))
    retry = cfg.retry_policy()
    params: dict[str, Any] = dict(cfg.params)
    if cfg.temperature is not None:
        params["temperature"] = cfg.temperature
    if cfg.max_tokens is not None:
        params["max_tokens"] = cfg.max_tokens
    backend = build_backend(
        parsed, role="judge", api_key_env=cfg.api_key_env, params=params, flag="api_key_env"
    )
    # The fields as sent (``humanlm.llm.params`` fits them to the model): they key the cache and
    # are written with every judged row.
    params = dict(getattr(backend, "params", params))
    chosen = cache if cache is not None else cfg.cache
    if isinstance(chosen, str | os.PathLike) and str(chosen):
        chosen = LLMCache(chosen)
    return LLMJudge(
        backend,
        name=parsed.display,
        concurrency=cfg.concurrency,
        retry=retry,
        limiter=RateLimiter(rpm=cfg.rpm, tpm=cfg.tpm),
        cache=chosen if isinstance(chosen, LLMCache) else None,
        ledger=Ledger(model=parsed.model, prices=table),
        params=params,
        seed=seed,
        structured=cfg.structured_output and parsed.kind == "openai",
        chat_gate=cfg.chat_gate,
    )
