"""The multi-role chat template, rendered without a tokenizer or through one.

The same Jinja file is saved into every tokenizer humanlm builds, so both paths give identical text.

Example:
    >>> from humanlm.states.template import render_chat
    >>> text = render_chat(messages, thinking=False)  # doctest: +SKIP
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["END_OF_TURN", "HUMAN", "load_chat_template", "render_chat"]

HUMAN = "HUMAN"
END_OF_TURN = "<|im_end|>"


@cache
def load_chat_template() -> str:
    """Return the Jinja source of the humanlm chat template."""
    return (resources.files("humanlm.states") / "chat_template.jinja").read_text("utf-8")


@cache
def _compiled() -> Any:
    # The same environment options transformers uses for apply_chat_template.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(load_chat_template())


def render_chat(
    messages: list[dict[str, str]],
    *,
    thinking: bool,
    add_generation_prompt: bool = True,
    tokenizer: Any = None,
) -> str:
    """Render ``messages`` to the exact prompt text the model sees.

    Args:
        messages: ``{role, name, content}`` dicts, system prompt first.
        thinking: open a ``<think>`` block (response) or pre-fill an empty one (states).
        add_generation_prompt: end with the HUMAN turn opener the model continues from.
        tokenizer: when given, render through ``tokenizer.apply_chat_template`` (its own template).
    """
    if tokenizer is not None:
        return tokenizer.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            enable_thinking=thinking,
        )
    return _compiled().render(
        messages=messages, add_generation_prompt=add_generation_prompt, enable_thinking=thinking
    )
