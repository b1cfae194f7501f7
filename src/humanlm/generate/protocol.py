"""The one generation interface: ``Generator.generate(prompts, settings) -> list[Generation]``.

Every caller (eval, serve, ``UserSimulator``, the demo) hands a generator the prompts and the
decoding settings of that call, and gets back the raw completion of each prompt (thinking
included), so that parsing is the same for every backend. Failures are data
(``Generation(None, error=...)``), never exceptions, except for a refused key or an unknown model,
which no retry can fix.

Example:
    >>> generator = build_generator("hf:runs/demo/humanlm/model")  # doctest: +SKIP
    >>> [gen] = generate_all(generator, [prompt], GenerationSettings())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from humanlm.errors import ConfigError
from humanlm.generate.prompt import SimPrompt
from humanlm.llm.limits import RetryPolicy
from humanlm.states.modes import THINKING_MAX_NEW_TOKENS

__all__ = [
    "Generation",
    "GenerationSettings",
    "Generator",
    "failure_reason",
    "generate_all",
    "row_seed",
]

_SEED_STEP = 0x9E3779B97F4A7C15  # odd, so row seeds of one call never collide


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings of one ``generate`` call; the defaults are the paper's evaluation protocol.

    Attributes:
        temperature: sampling temperature (0: greedy).
        top_p: nucleus sampling mass (1.0: off, so every backend samples the same way).
        max_new_tokens: generation budget per prompt (the protocol: ``Mode.max_new_tokens``,
            1024 with thinking, 512 without).
        no_repeat_ngram_size: ban tokens that would repeat an n-gram of the output (0: off).
        ngram_ban_scope: which output the ban covers: ``reply`` (the text after the thinking
            block; thinking is neither banned nor counted) or ``all`` (every generated token,
            thinking included). See ``humanlm.model.ngram``.
        batch_size: prompts per forward pass (``hf:``).
        concurrency: requests in flight (``openai:``); read once, when the generator is built.
        seed: sampling seed; each call (each ``hf:`` batch) starts from it, so the same prompts
            give the same outputs whenever they are asked.
        stop: stop strings (the closing tag of the requested state); kept in the output.
        retry: attempts, backoff and deadlines of one ``openai:`` request; read once, when the
            generator is built (its one client holds them).
    """

    temperature: float = 0.4
    top_p: float = 1.0
    max_new_tokens: int = THINKING_MAX_NEW_TOKENS
    no_repeat_ngram_size: int = 4
    ngram_ban_scope: str = "reply"
    batch_size: int = 8
    concurrency: int = 32
    seed: int = 0
    stop: tuple[str, ...] = ("</response>",)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        problems = []
        if self.temperature < 0:
            problems.append("temperature: must be >= 0 (0 means greedy decoding)")
        if not 0 < self.top_p <= 1:
            problems.append("top_p: must be in (0, 1]")
        if self.max_new_tokens < 1:
            problems.append("max_new_tokens: must be >= 1")
        if self.no_repeat_ngram_size < 0:
            problems.append("no_repeat_ngram_size: must be >= 0 (0 switches the ban off)")
        if self.ngram_ban_scope not in ("reply", "all"):
            problems.append("ngram_ban_scope: must be reply (after the thinking) or all")
        if self.batch_size < 1 or self.concurrency < 1:
            problems.append("batch_size and concurrency: must be >= 1")
        if problems:
            raise ConfigError(problems)

    def request_params(self) -> dict[str, Any]:
        """The sampling fields of an OpenAI-style request (``stop`` is the caller's to add)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_new_tokens,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Generation:
    """One completion.

    Attributes:
        text: the raw completion (thinking included), or ``None`` when the backend failed.
        error: why there is no text (``timeout``, ``transport_error``, ``rejected``, ...).
        finish_reason: ``stop`` or ``length`` when the backend says.
        completion_tokens: generated tokens, when the backend counts them.
        cut: the backend answered past the token budget and the text was cut at its character
            cap (``humanlm.generate.openai.REPLY_CHARS_PER_TOKEN``); ``finish_reason`` is then
            ``length``.
    """

    text: str | None
    error: str | None = None
    finish_reason: str | None = None
    completion_tokens: int | None = None
    cut: bool = False


def row_seed(seed: int, index: int) -> int:
    """The sampling seed of the ``index``-th prompt of a call seeded with ``seed`` (index 0 keeps
    ``seed``): the ``n`` choices of one request differ, and each is reproducible."""
    return (seed + index * _SEED_STEP) % (1 << 64)


def failure_reason(reason: str) -> str:
    """A failed call's reason as generators report it: HTTP failures are ``transport_error``."""
    return "transport_error" if reason in ("server_error", "rate_limited") else reason


@runtime_checkable
class Generator(Protocol):
    """Anything that turns simulator prompts into raw completions.

    Attributes:
        spec: the spec it was built from, safe to log (no credentials).
        batch_size: prompts per call it serves best (``None``: ``settings.batch_size``); the
            evaluation hands it prompts in chunks of this size.
        applies_ngram_ban: whether ``settings.no_repeat_ngram_size`` is applied (``openai:``:
            requested from a vLLM server).
        context_length: the most tokens a prompt plus its reply may have (``None``: unknown).
        continues_prompt: the completion continues the rendered prompt text (so it starts
            inside an opened think block when the prompt opened one); false for chat models.
    """

    spec: str
    batch_size: int | None
    applies_ngram_ban: bool
    context_length: int | None
    continues_prompt: bool

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        """One ``Generation`` per prompt, in order; failures are ``Generation(None, error)``."""
        ...

    def count_tokens(self, text: str) -> int | None:
        """Tokens of a rendered prompt, or ``None`` when it cannot count locally."""
        ...

    def health(self) -> str | None:
        """Why it cannot answer (an engine process died), or ``None`` when it can."""
        ...

    async def aclose(self) -> None:
        """Release connections or workers (connections reopen on use)."""
        ...


def generate_all(
    generator: Generator, prompts: Sequence[SimPrompt], settings: GenerationSettings
) -> list[Generation]:
    """Generate for ``prompts`` from synchronous code (runs its own event loop)."""

    async def go() -> list[Generation]:
        try:
            return await generator.generate(prompts, settings)
        finally:
            await generator.aclose()

    return asyncio.run(go())
