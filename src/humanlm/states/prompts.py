"""Per-state prompts: the system prompt, the full message list of an example, state augmentation.

Example:
    >>> from humanlm.states import build_messages
    >>> msgs = build_messages(example, "stance", state_set="sebvgcr")  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from humanlm.states.registry import RESPONSE, StateSet, get_state, get_state_set
from humanlm.states.render import load_template, render

__all__ = [
    "CHAT_SOURCES",
    "augment_states",
    "build_messages",
    "build_system_prompt",
    "build_task",
    "is_thinking",
]


# Data sources whose conversations are chats with an AI assistant: there the system prompt also
# says that the model is the human user of the chat, not the assistant.
CHAT_SOURCES = ("wildchat",)


def _as_set(state_set: StateSet | str) -> StateSet:
    return get_state_set(state_set) if isinstance(state_set, str) else state_set


def build_task(state: str, *, state_set: StateSet | str = "sebvgcr") -> str:
    """Return the task section for ``state``: what to output and in which tag."""
    spec = get_state(state)
    if state == RESPONSE:
        return load_template("task_response" if _as_set(state_set).tagged else "task_response_raw")
    return render(
        load_template("task_state"),
        name=spec.name,
        description=spec.description,
        max_words=spec.max_words,
        open_tag=spec.open_tag,
        close_tag=spec.close_tag,
    )


def build_system_prompt(
    persona: str,
    state: str,
    *,
    state_set: StateSet | str = "sebvgcr",
    source: str | None = None,
) -> str:
    """Return the shared system prompt with ``persona`` and the task section of ``state``.

    ``source``: the example's data source; a chat with an AI assistant (``CHAT_SOURCES``) adds
    that the model is the human user there, not the assistant.
    """
    return render(
        load_template("system"),
        persona=persona.strip() or "Missing",
        task=build_task(state, state_set=state_set),
        chat_role=" " + load_template("chat_role") if source in CHAT_SOURCES else "",
    )


def build_messages(
    example: Mapping[str, Any], state: str, *, state_set: StateSet | str = "sebvgcr"
) -> list[dict[str, str]]:
    """Turn a prepared example plus a state into the full message list (system prompt first).

    Args:
        example: a prepared row with ``persona`` (text) and ``messages``
            (``{role, name, content}`` dicts, the rendered context); its ``data_source``, when
            present, picks the chat sentence of the system prompt (``build_system_prompt``).
        state: the state this copy of the example asks for.
        state_set: the state set, which decides tagged vs. raw response output.
    """
    system = {
        "role": "system",
        "name": "system",
        "content": build_system_prompt(
            example["persona"], state, state_set=state_set, source=example.get("data_source")
        ),
    }
    context = [
        {"role": m["role"], "name": m["name"], "content": m["content"]} for m in example["messages"]
    ]
    return [system, *context]


def is_thinking(state: str, *, thinking: bool) -> bool:
    """Hetero thinking: only the response may think; the six states are answered directly."""
    return thinking and state == RESPONSE


def augment_states(
    examples: Sequence[Mapping[str, Any]], *, state_set: StateSet | str, seed: int = 0
) -> list[tuple[Mapping[str, Any], str]]:
    """Replicate each example once per state of ``state_set`` and shuffle deterministically.

    Returns:
        ``(example, state)`` pairs, ``len(examples) * len(states)`` of them, mixed across states.
    """
    states = _as_set(state_set).states
    pairs = [(ex, st) for ex in examples for st in states]
    random.Random(seed).shuffle(pairs)
    return pairs
