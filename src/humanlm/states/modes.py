"""Training modes: which states a model writes, whether it thinks, and which trainer teaches it.

One definition used by ``train``, ``eval``, ``data show`` and the verl adapter.

Example:
    >>> get_mode("grpo-think").thinking
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from humanlm.errors import ConfigError
from humanlm.states.registry import RESPONSE, STATES

__all__ = ["MODES", "THINKING_MAX_NEW_TOKENS", "Mode", "get_mode", "max_new_tokens_for"]

# The paper's new-token budget for a reply that opens with a thinking block; without thinking the
# response state's own budget applies.
THINKING_MAX_NEW_TOKENS = 1024


def max_new_tokens_for(thinking: bool) -> int:
    """The reply's generation budget: 1024 with thinking, else the response state's (512)."""
    return THINKING_MAX_NEW_TOKENS if thinking else STATES[RESPONSE].max_new_tokens


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

    @property
    def max_new_tokens(self) -> int:
        """The reply's generation budget for this mode (``max_new_tokens_for(thinking)``)."""
        return max_new_tokens_for(self.thinking)


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
