"""A ``humanlm serve`` endpoint as a user simulator: the conversation goes out as it is.

``UserSimulator.from_spec("openai:MODEL@URL")`` returns a ``ServedUserSimulator`` when ``URL``
is a humanlm server; its replies come back parsed (text, end signal, states, thinking) from the
``humanlm`` field the server adds to each choice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from humanlm.errors import ConfigError
from humanlm.generate.prompt import SimPrompt
from humanlm.generate.protocol import GenerationSettings, failure_reason
from humanlm.llm.build import build_backend
from humanlm.llm.client import ChatClient
from humanlm.llm.specs import ModelSpec, resolve_api_key
from humanlm.simulate.reply import Replier, Reply
from humanlm.states import is_end_signal

__all__ = ["ServedUserSimulator", "is_humanlm_server"]

_KEY_FLAG = "--simulator-api-key-env"


class ServedUserSimulator(Replier):
    """A ``humanlm serve`` endpoint: the conversation goes out as is, the reply comes back parsed.

    Built by ``UserSimulator.from_spec`` for an ``openai:MODEL@URL`` that is a humanlm server.
    All its requests go through one ``ChatClient`` (``settings.concurrency`` and ``retry``).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        settings: GenerationSettings | None = None,
        api_key_env: str | None = None,
    ):
        spec = ModelSpec("openai", model, base_url)
        self.spec = spec.display
        self.mode = "served"
        self.state_set, self.thinking = "r", False
        self.settings = settings or GenerationSettings()
        backend = build_backend(spec, role="simulator", api_key_env=api_key_env, flag=_KEY_FLAG)
        self.client = ChatClient(
            backend,
            name=self.spec,
            retry=self.settings.retry,
            concurrency=self.settings.concurrency,
            seed=self.settings.seed,
        )

    def __repr__(self) -> str:
        return f"ServedUserSimulator(spec={self.spec!r})"

    def prompt(self, persona: Any, messages: Sequence[Any]) -> SimPrompt:
        raise ConfigError("a served simulator renders its prompt on the server")

    async def areplies(
        self,
        persona: str | Mapping[str, Any] | None,
        messages: Sequence[Any],
        *,
        n: int = 1,
        settings: GenerationSettings | None = None,
    ) -> list[Reply]:
        """``n`` independent replies to the same conversation (one request with ``n``)."""
        s = settings or self.settings
        if isinstance(persona, Mapping):
            persona = json.dumps(dict(persona), ensure_ascii=False)
        chat = ([{"role": "system", "content": persona}] if persona else []) + list(messages)
        answer = await self.client.ask(chat, params={**s.request_params(), "n": n})
        if not answer.ok or answer.completion is None:
            return [Reply("", error=failure_reason(answer.reason))] * n
        completion = answer.completion
        tokens = completion.output_tokens if completion.usage_valid and n == 1 else 0
        replies = []
        for choice in completion.choices:
            extra = choice.extra.get("humanlm") or {}
            ended = bool(extra.get("ended")) or is_end_signal(choice.text)
            replies.append(
                Reply(
                    "" if ended else choice.text,
                    ended=ended,
                    states=dict(extra.get("states") or {}),
                    thinking=extra.get("thinking"),
                    raw=extra.get("raw"),
                    finish_reason=choice.finish_reason,
                    completion_tokens=tokens or None,
                )
            )
        return replies

    async def aclose(self) -> None:
        """Close connections (a later call opens new ones)."""
        await self.client.aclose()


def is_humanlm_server(base_url: str, *, api_key_env: str | None) -> bool:
    """Whether ``base_url`` is a ``humanlm serve`` (its models are ``owned_by: humanlm``).

    Raises:
        ConfigError: the server cannot be reached.
    """
    spec = ModelSpec("openai", "probe", base_url)
    key = resolve_api_key(spec, api_key_env, role="simulator", flag=_KEY_FLAG)
    try:
        answer = httpx.get(
            base_url.rstrip("/") + "/models",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10.0,
        )
    except httpx.HTTPError:
        raise ConfigError(
            f"simulator openai:...@{base_url}: cannot reach {base_url}/models; is the server up?"
        ) from None
    try:
        models = answer.json().get("data") or []
    except ValueError:
        return False
    return any(isinstance(m, Mapping) and m.get("owned_by") == "humanlm" for m in models)
