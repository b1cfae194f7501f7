"""The assistant under test: any OpenAI-compatible chat endpoint, retried through the LLM layer.

Example:
    >>> assistant = Assistant.from_spec("openai:gpt-4o-mini", system="You are helpful.")  # doctest: +SKIP
    >>> answer = await assistant.reply([{"role": "user", "content": "hi"}])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from humanlm.errors import ConfigError
from humanlm.simulate.llm import CallFailure, call_with_retries, llm_parts

__all__ = ["Assistant", "AssistantAnswer"]

_SPEC = re.compile(r"^openai:(?P<model>[^@]+?)(?:@(?P<url>https?://.+))?$")


@dataclass(frozen=True)
class AssistantAnswer:
    """One assistant turn, or why there is none.

    Attributes:
        text: the reply (``None`` when the call failed after its retries).
        error: the failure reason (``timeout``, ``transport_error``, ``refused``, ...).
        prompt_tokens, completion_tokens: usage the server reported (0 when it reported none).
    """

    text: str | None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Assistant:
    """An OpenAI-compatible chat model answering the simulated user.

    Args:
        model: the model name the server expects.
        base_url: the server (``None``: api.openai.com).
        api_key: its key (a placeholder for a local server without one).
        system: a system message put before every conversation (not recorded in it).
        retry: the retry policy (attempts, backoff, deadlines) of one turn.
        params: extra request fields (``temperature``, ``max_tokens`` ...).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        api_key: str,
        system: str | None = None,
        retry: Any = None,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
    ):
        parts = llm_parts()
        self.spec = f"openai:{model}" + (f"@{base_url}" if base_url else "")
        self.system = system
        self.retry = retry or parts.RetryPolicy(max_retries=3, timeout_s=120.0)
        self._backend = parts.OpenAIBackend(
            model, api_key=api_key, base_url=base_url, params=dict(params or {})
        )
        self._rng = random.Random(seed)

    @classmethod
    def from_spec(
        cls,
        spec: str,
        *,
        system: str | None = None,
        api_key_env: str | None = None,
        retry: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Assistant:
        """Build from ``openai:MODEL[@BASE_URL]``.

        Raises:
            ConfigError: another spec, or api.openai.com without a key.
        """
        match = _SPEC.match(spec.strip())
        if match is None:
            raise ConfigError(
                f"assistant spec {spec!r} is not understood; use openai:MODEL[@BASE_URL]"
            )
        env = api_key_env or "OPENAI_API_KEY"
        key = os.environ.get(env) or ("EMPTY" if match["url"] else None)
        if key is None:
            raise ConfigError(
                f"assistant {spec} needs an API key in ${env}; export it, or name another "
                "variable with --assistant-key-env"
            )
        return cls(
            match["model"],
            base_url=match["url"],
            api_key=key,
            system=system,
            retry=retry,
            params=params,
        )

    def __repr__(self) -> str:
        return f"Assistant(spec={self.spec!r})"

    async def reply(self, messages: Sequence[Mapping[str, str]]) -> AssistantAnswer:
        """The assistant's next turn for ``messages`` (``user``/``assistant`` roles)."""
        chat = [{"role": m["role"], "content": m["content"]} for m in messages]
        if self.system:
            chat.insert(0, {"role": "system", "content": self.system})

        async def call(timeout: float) -> Any:
            return await self._backend.complete(chat, timeout_s=timeout)

        answer = await call_with_retries(call, policy=self.retry, where=self.spec, rng=self._rng)
        if isinstance(answer, CallFailure):
            return AssistantAnswer(None, error=answer.reason)
        return AssistantAnswer(answer.text, None, answer.input_tokens, answer.output_tokens)

    async def aclose(self) -> None:
        await self._backend.aclose()
