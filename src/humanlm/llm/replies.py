"""What a reply holds: ``Completion`` (usage and every ``Choice``), read from the JSON of a chat
or text-API reply or from an SDK response object, never raising on odd fields."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_USAGE_TOKENS", "Choice", "Completion", "read_completion", "read_usage"]


@dataclass(frozen=True)
class Choice:
    """One choice of a reply (a request with ``n`` gets ``n``).

    Attributes:
        text: the message content (chat) or the text (text API); ``""`` when there was none.
        finish_reason: why it ended (``stop``, ``length`` ...), as the server said.
        reasoning: reasoning the server returned apart from the text (chat only).
        extra: the choice's fields beyond the API's own (``humanlm serve`` adds ``humanlm``).
    """

    text: str
    finish_reason: str | None = None
    reasoning: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """One reply: the first choice's text, finish reason and reasoning, the token usage of the
    whole reply (0 when the server reported none) and every choice in ``choices``.

    ``usage_valid`` is false when the server's ``usage`` held a count that is not a
    non-negative integer (``read_usage``); the counts are then 0 and the reply itself stands.
    """

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    reasoning: str | None = None
    usage_valid: bool = True
    choices: tuple[Choice, ...] = ()


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` of a JSON reply, or ``obj.name`` of a litellm response object."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


# More tokens than any model takes in one request: a count above it is a broken report.
MAX_USAGE_TOKENS = 100_000_000


def _count(value: Any) -> int | None:
    """A token count: a non-negative integer (a float with an integral value too), at most
    ``MAX_USAGE_TOKENS``; ``None`` for anything else (negative, fractional, text, a boolean)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= MAX_USAGE_TOKENS:
        return None
    return value


def read_usage(usage: Any) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` of a reply's ``usage`` (a JSON object or an SDK
    object); a missing ``usage`` or count is 0. ``None`` when a count is not a non-negative
    integer: the call's usage is then unknown, never a negative or made-up number."""
    if usage is None:
        return 0, 0
    if isinstance(usage, str | int | float | list):
        return None  # a number, a text or a list where the counts belong
    prompt = _count(_field(usage, "prompt_tokens"))
    completion = _count(_field(usage, "completion_tokens"))
    if prompt is None or completion is None:
        return None
    return prompt, completion


def _usage(response: Any) -> tuple[int, int, bool]:
    counts = read_usage(_field(response, "usage"))
    return (0, 0, False) if counts is None else (*counts, True)


# The fields a choice has in the API itself; any other field is a server's own (``extra``).
_CHOICE_FIELDS = frozenset({"index", "message", "text", "finish_reason", "logprobs", "delta"})


def _choice(choice: Any) -> Choice:
    """A chat choice (text in ``message.content``) or a text-API one (text in ``text``)."""
    message = _field(choice, "message")
    text = _field(message, "content") if message is not None else _field(choice, "text")
    reasoning = _field(message, "reasoning_content") or _field(message, "reasoning")
    if isinstance(choice, dict):
        extra = {k: v for k, v in choice.items() if k not in _CHOICE_FIELDS}
    else:  # an SDK object (litellm) keeps the server's own fields in ``model_extra``
        extra = dict(getattr(choice, "model_extra", None) or {})
    finish = _field(choice, "finish_reason")
    return Choice(
        text if isinstance(text, str) else "",
        finish_reason=finish if isinstance(finish, str) else None,
        reasoning=reasoning if isinstance(reasoning, str) and reasoning.strip() else None,
        extra=extra,
    )


def read_completion(response: Any) -> Completion:
    """The ``Completion`` of a chat or text-API reply; no choices gives an empty text."""
    input_tokens, output_tokens, valid = _usage(response)
    choices = _field(response, "choices")
    if not isinstance(choices, list):
        choices = []
    read = tuple(_choice(choice) for choice in choices)
    first = read[0] if read else Choice("")
    return Completion(
        first.text,
        input_tokens,
        output_tokens,
        finish_reason=first.finish_reason,
        reasoning=first.reasoning,
        usage_valid=valid,
        choices=read,
    )
