"""``Reply``: what the simulated user writes next, read from a raw completion.

The text carries no tags and no thinking; the latent states and thinking the model wrote come
apart, with whether the user ended the conversation (``humanlm.states.ending``).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from humanlm.states import LATENT_STATES, is_end_signal
from humanlm.states.parsing import THINK_CLOSE, extract_response, parse_output

__all__ = ["Reply", "Replier", "parse_reply"]


@dataclass(frozen=True)
class Reply:
    """What the simulated user writes next.

    Attributes:
        text: the message, with no tags and no thinking (``""`` when the user ended or the
            backend failed).
        ended: the user ended the conversation (the model wrote the end signal).
        states: latent states the model wrote (``stance``, ``emotion``, ...), when it wrote any.
        thinking: the model's thinking, when it thought.
        raw: the completion as generated (``None`` when the backend failed).
        finish_reason: ``stop`` or ``length``.
        error: why there is no reply (``timeout``, ``transport_error``, ...), else ``None``.
        completion_tokens: generated tokens, when known.
        cut: the model answered past its token budget and the reply was cut at its character
            cap (``humanlm.generate.Generation.cut``).
    """

    text: str
    ended: bool = False
    states: dict[str, str] = field(default_factory=dict)
    thinking: str | None = None
    raw: str | None = None
    finish_reason: str | None = None
    error: str | None = None
    completion_tokens: int | None = None
    cut: bool = False


def parse_reply(raw: str | None, *, thinking: bool, finish_reason: str | None = None) -> Reply:
    """Read a raw completion: the response, the states and thinking, and the end signal.

    ``thinking``: the completion continues a prompt that opened a think block.
    """
    if raw is None:
        return Reply("", finish_reason=finish_reason)
    states = {
        name: value
        for name, value in parse_output(raw, LATENT_STATES, strict=False).fields.items()
        if value
    }
    if thinking and THINK_CLOSE not in raw:
        # The prompt opened a think block that never closed: all of it is thinking.
        return Reply(
            "", states=states, thinking=raw.strip() or None, raw=raw, finish_reason=finish_reason
        )
    text = extract_response(raw)
    ended = is_end_signal(text)
    found = parse_output(raw, [], strict=False).thinking
    return Reply(
        "" if ended else text,
        ended=ended,
        states=states,
        thinking=found or None,
        raw=raw,
        finish_reason=finish_reason,
    )


class Replier(ABC):
    """``areply`` and ``reply`` for a user simulator that answers ``areplies`` (one batch of
    ``n`` replies to a conversation) and closes its connections with ``aclose``."""

    @abstractmethod
    async def areplies(
        self, persona: str | Mapping[str, Any] | None, messages: Sequence[Any], **options: Any
    ) -> list[Reply]:
        """Replies to the same conversation, one per requested choice."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close connections (a later call opens new ones)."""

    async def areply(
        self, persona: str | Mapping[str, Any] | None, messages: Sequence[Any]
    ) -> Reply:
        """What the user writes next (async)."""
        [reply] = await self.areplies(persona, messages)
        return reply

    def reply(self, persona: str | Mapping[str, Any] | None, messages: Sequence[Any]) -> Reply:
        """What the user writes next (from synchronous code; not inside a running event loop)."""

        async def once() -> Reply:
            try:
                return await self.areply(persona, messages)
            finally:
                await self.aclose()

        return asyncio.run(once())
