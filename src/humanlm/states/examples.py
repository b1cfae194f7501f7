"""Prepared examples seen through the states: the simulator's prompt text and the judge's context.

Training and evaluation both need these two views of an example, and neither may import the
other, so they live here.

Example:
    >>> text = render_prompt(example, "response", state_set="r", thinking=True)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from humanlm.states.prompts import build_messages, is_thinking
from humanlm.states.template import render_chat

__all__ = ["judge_context", "render_prompt"]


def render_prompt(example: Mapping[str, Any], state: str, *, state_set: str, thinking: bool) -> str:
    """The exact prompt text for one (example, state): template applied, generation prompt added."""
    return render_chat(
        build_messages(example, state, state_set=state_set),
        thinking=is_thinking(state, thinking=thinking),
    )


def judge_context(example: Mapping[str, Any]) -> list[dict[str, str]]:
    """The context as the judge sees it: ``{name, content}`` per message."""
    return [{"name": m["name"], "content": m["content"]} for m in example["messages"]]
