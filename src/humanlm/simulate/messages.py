"""A conversation given from the simulated user's side, turned into the simulator's prompt.

The conversation comes as OpenAI-style messages:

- ``user`` messages without a ``name`` (or named ``HUMAN``) are the simulated user's own earlier
  messages;
- ``user`` messages with a ``name`` are other people in a thread (a Reddit post, an email);
- ``assistant`` messages are an AI assistant's turns;
- ``system`` (or ``developer``) messages, if any, are added to the persona.

The persona is plain text or a Humanual persona object (a dict, or its JSON text).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from humanlm.data.persona import render_persona
from humanlm.errors import HumanlmError
from humanlm.generate.prompt import SimPrompt, build_sim_prompt
from humanlm.states.template import HUMAN

__all__ = ["ConversationError", "build_prompt", "split_persona"]

_ROLES = ("system", "developer", "user", "assistant")


class ConversationError(HumanlmError):
    """Messages that cannot be a conversation (the server answers them with HTTP 400).

    Attributes:
        param: where the problem is, e.g. ``messages[2].role``.
    """

    def __init__(self, message: str, *, param: str | None = None):
        self.param = param
        super().__init__(f"{param}: {message}" if param else message)


def _content(message: Any, where: str) -> str:
    if not isinstance(message, Mapping):
        raise ConversationError("each message must be an object", param=where)
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts: only text is understood
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") != "text":
                raise ConversationError(
                    "only text content parts are supported", param=f"{where}.content[{j}]"
                )
            texts.append(str(part.get("text") or ""))
        content = "".join(texts)
    if not isinstance(content, str):
        raise ConversationError("content must be a string", param=f"{where}.content")
    return content


def split_persona(messages: Sequence[Any]) -> tuple[str, list[Mapping[str, Any]]]:
    """Take the ``system``/``developer`` messages out as the persona; return it and the rest."""
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        raise ConversationError("must be a list of messages", param="messages")
    persona, rest = [], []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, Mapping) else None
        if role in ("system", "developer"):
            persona.append(_content(m, f"messages[{i}]"))
        else:
            rest.append(m)
    return "\n\n".join(p for p in persona if p.strip()), rest


def _persona_text(persona: str | Mapping[str, Any] | None) -> str:
    if persona is None:
        return ""
    if isinstance(persona, str):
        stripped = persona.strip()
        if not stripped.startswith("{"):
            return stripped
        try:
            persona = json.loads(stripped)
        except ValueError:
            return stripped
    try:
        return render_persona(dict(persona))
    except HumanlmError as err:
        raise ConversationError(f"not a Humanual persona object ({err})", param="persona") from None


def build_prompt(
    persona: str | Mapping[str, Any] | None,
    messages: Sequence[Any],
    *,
    state_set: str,
    thinking: bool,
) -> SimPrompt:
    """The simulator prompt for a conversation given from the user's side (module docstring).

    Raises:
        ConversationError: a message with an unknown role, a bad name or empty content.
    """
    extra, _ = split_persona(messages)
    persona_text = "\n\n".join(t for t in (_persona_text(persona), extra) if t)
    context = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, Mapping):
            raise ConversationError("each message must be an object", param=where)
        role = m.get("role")
        if role in ("system", "developer"):
            continue
        if role not in _ROLES:
            raise ConversationError(
                f"unknown role {role!r}; use system, user or assistant", param=f"{where}.role"
            )
        content = _content(m, where)
        if not content.strip():
            raise ConversationError("content is empty", param=f"{where}.content")
        name = m.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConversationError("name must be a non-empty string", param=f"{where}.name")
        if role == "assistant":
            context.append({"role": "assistant", "name": "assistant", "content": content})
        else:
            context.append(
                {"role": "user", "name": name.strip() if name else HUMAN, "content": content}
            )
    example = {"persona": persona_text, "messages": context}
    return build_sim_prompt(example, thinking=thinking, state_set=state_set)
