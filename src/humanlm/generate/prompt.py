"""What a simulator is asked: one example's response prompt, as text and as messages.

Local generators (``hf:``, ``vllm:``) and the ``openai:`` text API generate from ``text``, the
prompt rendered with our multi-role chat template exactly as in training; the ``openai:`` chat
API gets ``messages`` mapped to chat roles (see ``humanlm.generate.openai``).

Example:
    >>> prompt = build_sim_prompt(example, thinking=True)  # doctest: +SKIP
    >>> prompt.text.endswith("<name>HUMAN</name>\\n<think>\\n")  # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from humanlm.states import RESPONSE, build_messages, is_thinking
from humanlm.states.examples import render_prompt

__all__ = ["SimPrompt", "build_sim_prompt"]


@dataclass(frozen=True)
class SimPrompt:
    """One simulator request.

    Attributes:
        text: the rendered prompt (template applied, generation prompt added).
        messages: the same prompt as ``{role, name, content}`` messages, system prompt first.
        thinking: the generation prompt opens a think block (off: an empty one is pre-filled).
    """

    text: str
    messages: tuple[Mapping[str, str], ...]
    thinking: bool


def build_sim_prompt(
    example: Mapping[str, Any], *, thinking: bool, state_set: str = "r"
) -> SimPrompt:
    """The response prompt of ``example`` (the evaluation uses the response prompt only).

    Args:
        example: a prepared example (``persona``, ``messages``).
        thinking: let the simulator think before it answers.
        state_set: ``r`` (tagged response, the evaluation protocol) or ``r_no_tag``.
    """
    return SimPrompt(
        text=render_prompt(example, RESPONSE, state_set=state_set, thinking=thinking),
        messages=tuple(build_messages(example, RESPONSE, state_set=state_set)),
        thinking=is_thinking(RESPONSE, thinking=thinking),
    )
