"""The ``Judge`` interface and ``build_judge``, which turns a spec string into a judge.

Specs:

- ``openai:MODEL`` -- the OpenAI API (key from ``$OPENAI_API_KEY`` unless ``api_key_env`` names
  another variable);
- ``openai:MODEL@BASE_URL`` -- any OpenAI-compatible server (vLLM, SGLang, a local test server);
  for a local address (127.0.0.1, localhost) a missing key is fine: a placeholder is sent;
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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from humanlm.config import JudgeConfig
from humanlm.errors import ConfigError
from humanlm.judge.client import LLMJudge
from humanlm.judge.embedding import EmbeddingJudge
from humanlm.judge.verdict import AspectVerdict, GroupVerdict
from humanlm.llm.backends import LiteLLMBackend, OpenAIBackend
from humanlm.llm.cache import LLMCache
from humanlm.llm.ledger import DEFAULT_PRICES, Ledger, Price
from humanlm.llm.limits import RateLimiter, RetryPolicy
from humanlm.states import LATENT_STATES

__all__ = ["Judge", "JudgeSpec", "build_judge", "build_judge_from_config", "parse_spec"]

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")
_DUMMY_KEY = "EMPTY"


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

    async def judge_group(
        self,
        *,
        context: Sequence[Mapping[str, object]],
        ground_truth: str,
        state: str,
        candidates: Sequence[str | None],
        use_cache: bool = True,
    ) -> GroupVerdict:
        """Score the candidates of one (example, state) group; never raises for a bad reply."""
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


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed judge spec: ``kind`` (openai, litellm, embedding), ``model``, ``base_url``."""

    kind: str
    model: str
    base_url: str | None = None

    @property
    def display(self) -> str:
        """The spec as text, with any user:password in the URL removed."""
        if self.base_url is None:
            return f"{self.kind}:{self.model}"
        parts = urlsplit(self.base_url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        return f"{self.kind}:{self.model}@{urlunsplit(parts._replace(netloc=netloc))}"


def parse_spec(spec: str) -> JudgeSpec:
    """Parse ``openai:MODEL[@BASE_URL]``, ``litellm:PROVIDER/MODEL`` or ``embedding:minilm``.

    Raises:
        ConfigError: the spec has another shape.
    """
    kind, sep, rest = spec.strip().partition(":")
    usage = "use openai:MODEL[@BASE_URL], litellm:PROVIDER/MODEL or embedding:minilm"
    if not sep or not rest:
        raise ConfigError(f"judge spec {spec!r} is not KIND:MODEL; {usage}")
    if kind == "openai":
        match = re.match(r"^(?P<model>.+?)@(?P<url>https?://.+)$", rest)
        if match:
            return JudgeSpec("openai", match["model"], match["url"])
        if "@" in rest:
            raise ConfigError(
                f"judge spec {spec!r}: the base URL must start with http:// or https://"
            )
        return JudgeSpec("openai", rest)
    if kind == "litellm":
        if "/" not in rest:
            raise ConfigError(f"judge spec {spec!r}: litellm needs PROVIDER/MODEL")
        return JudgeSpec("litellm", rest)
    if kind == "embedding":
        if rest != "minilm":
            raise ConfigError(f"judge spec {spec!r}: the only embedding judge is embedding:minilm")
        return JudgeSpec("embedding", rest)
    raise ConfigError(f"judge spec {spec!r}: unknown kind {kind!r}; {usage}")


def _is_local(base_url: str | None) -> bool:
    return base_url is not None and (urlsplit(base_url).hostname or "") in _LOCAL_HOSTS


def _api_key(spec: JudgeSpec, api_key_env: str | None) -> str | None:
    """The key from the named environment variable; never read from files, never logged."""
    if spec.kind == "litellm":
        return os.environ.get(api_key_env) if api_key_env else None
    env = api_key_env or "OPENAI_API_KEY"
    key = os.environ.get(env)
    if key:
        return key
    if _is_local(spec.base_url):
        return _DUMMY_KEY
    raise ConfigError(
        f"judge {spec.display} needs an API key in the environment variable {env} (it is unset); "
        "export it, or name another variable with api_key_env"
    )


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
    rpm: float | None = None,
    tpm: float | None = None,
    cache: str | os.PathLike[str] | LLMCache | None = None,
    prices: Mapping[str, Price | tuple[float, float]] | None = None,
    extra_params: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> Judge:
    """Build a judge from a spec string (see the module docstring for the spec forms).

    Args:
        spec: which judge.
        temperature: sampling temperature sent to the judge (``None``: the server's default).
        max_tokens: reply length limit sent to the judge (``None``: not sent).
        api_key_env: name of the environment variable with the key (default ``OPENAI_API_KEY``
            for ``openai:``; the provider's own for ``litellm:``).
        concurrency: judge calls in flight at once.
        timeout_s: overall deadline of one judge call, retries included.
        request_timeout_s: limit of one HTTP request (default: half of ``timeout_s``, so a
            request that never answers still leaves time for one retry).
        max_retries: re-attempts per call after transport or content failures.
        backoff_s, backoff_max_s: first and largest backoff delay.
        rpm, tpm: requests / tokens per minute limits (``None``: unlimited).
        cache: SQLite cache path (``""`` or ``None``: no cache) or an open ``LLMCache``.
            The embedding judge ignores it (it is cheaper than a lookup).
        prices: per-model ``Price`` (or ``(input, output)`` USD per 1M tokens) merged over
            ``DEFAULT_PRICES`` for the ledger's cost estimate.
        extra_params: more request fields (``seed``, ``reasoning_effort``, ...), part of the
            cache key.
        seed: seed of the retry jitter.

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
        return EmbeddingJudge(ledger=Ledger(model="minilm", prices=table))
    retry = RetryPolicy(
        max_retries=max_retries,
        timeout_s=timeout_s,
        request_timeout_s=request_timeout_s or timeout_s / 2,
        backoff_s=backoff_s,
        backoff_max_s=backoff_max_s,
    )
    params: dict[str, Any] = dict(extra_params or {})
    if temperature is not None:
        params["temperature"] = temperature
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    key = _api_key(parsed, api_key_env)
    if parsed.kind == "openai":
        backend: Any = OpenAIBackend(
            parsed.model, api_key=key or _DUMMY_KEY, base_url=parsed.base_url, params=params
        )
    else:
        backend = LiteLLMBackend(parsed.model, api_key=key, params=params)
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
    )


def build_judge_from_config(cfg: JudgeConfig) -> Judge:
    """``build_judge`` with the settings of a run config's ``judge:`` (or ``eval_judge:``) block.

    The TRL trainer, its validation and the verl reward manager all build their judge here.
    """
    return build_judge(
        cfg.spec,
        temperature=cfg.temperature,
        api_key_env=cfg.api_key_env,
        concurrency=cfg.concurrency,
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        cache=cfg.cache or None,
    )
