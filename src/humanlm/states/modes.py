"""Training modes: which states a model writes, whether it thinks, and which trainer teaches it.

One definition used by ``train``, ``eval``, ``data show`` and the verl adapter.

Example:
    >>> get_mode("grpo-think").thinking
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from humanlm.errors import ConfigError

__all__ = ["MODES", "Mode", "get_mode"]


@dataclass(frozen=True)
class Mode:
    """One training mode.

    Attributes:
        name: the mode's id (``humanlm``, ``grpo``, ...).
        state_set: the state set its prompts use (``sebvgcr``, ``r``, ``r_no_tag``, ``think_r``).
        thinking: whether the response prompt opens a thinking block.
        algorithm: ``grpo`` (trained against the judge) or ``sft`` (on the real replies).
    """

    name: str
    state_set: str
    thinking: bool
    algorithm: str


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("humanlm", "sebvgcr", thinking=True, algorithm="grpo"),
        Mode("grpo", "r", thinking=False, algorithm="grpo"),
        Mode("grpo-think", "r", thinking=True, algorithm="grpo"),
        Mode("sft", "r_no_tag", thinking=False, algorithm="sft"),
        Mode("sft-think", "think_r", thinking=True, algorithm="sft"),
    )
}


def get_mode(name: str) -> Mode:
    """The mode named ``name``.

    Raises:
        ConfigError: no such mode.
    """
    try:
        return MODES[name]
    except KeyError:
        raise ConfigError(f"mode {name!r} is not one of {', '.join(MODES)}") from None
