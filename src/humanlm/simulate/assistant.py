"""The assistant under test: any OpenAI-compatible chat endpoint, retried through the LLM layer.

Example:
    >>> assistant = Assistant.from_spec("openai:gpt-4o-mini", system="You are helpful.")  # doctest: +SKIP
    >>> answer = await assistant.reply([{"role": "user", "content": "hi"}])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from humanlm.errors import HumanlmError
from humanlm.generate.protocol import failure_reason
from humanlm.llm.backends import OpenAIBackend
from humanlm.llm.client import ChatClient
from humanlm.llm.limits import RetryPolicy
from humanlm.llm.specs import ModelSpec, parse_spec, resolve_api_key

__all__ = ["Assistant", "AssistantAnswer"]


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
        retry: RetryPolicy | None = None,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
    ):
        spec = ModelSpec("openai", model, base_url)
        self.spec = spec.display
        self.system = system
        backend = OpenAIBackend(
            model, api_key=api_key, base_url=base_url, params=dict(params or {}), role="assistant"
        )
        self._client = ChatClient(
            backend,
            name=self.spec,
            retry=retry or RetryPolicy(max_retries=3, timeout_s=120.0),
            seed=seed,
        )

    @classmethod
    def from_spec(
        cls,
        spec: str,
        *,
        system: str | None = None,
        api_key_env: str | None = None,
        retry: RetryPolicy | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Assistant:
        """Build from ``openai:MODEL[@BASE_URL]`` under the one key rule (``humanlm.llm.specs``).

        Raises:
            ConfigError: another spec, or an endpoint that needs a key whose variable is unset.
        """
        parsed = parse_spec(spec, role="assistant", kinds=("openai",))
        key = resolve_api_key(parsed, api_key_env, role="assistant", flag="--assistant-api-key-env")
        assert key is not None
        return cls(
            parsed.model,
            base_url=parsed.base_url,
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
        try:
            answer = await self._client.ask(chat)
        except HumanlmError:  # bad credentials, unknown model or URL: retrying cannot help
            return AssistantAnswer(None, error="refused")
        if not answer.ok or answer.completion is None:
            return AssistantAnswer(None, error=failure_reason(answer.reason))
        c = answer.completion
        return AssistantAnswer(c.text, None, c.input_tokens, c.output_tokens)

    async def aclose(self) -> None:
        await self._client.aclose()
