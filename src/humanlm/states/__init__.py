"""The latent user states: registry, prompts and templates. The project's core vocabulary."""

from humanlm.states.ending import END_SIGNAL, is_end_signal
from humanlm.states.modes import MODES, THINKING_MAX_NEW_TOKENS, Mode, get_mode, max_new_tokens_for
from humanlm.states.prompts import (
    augment_states,
    build_messages,
    build_system_prompt,
    build_task,
    is_thinking,
)
from humanlm.states.registry import (
    LATENT_STATES,
    RESPONSE,
    STATE_NAMES,
    STATE_SETS,
    STATES,
    State,
    StateSet,
    get_state,
    get_state_set,
)
from humanlm.states.render import prompt_versions, render

__all__ = [
    "END_SIGNAL",
    "LATENT_STATES",
    "MODES",
    "Mode",
    "RESPONSE",
    "STATES",
    "STATE_NAMES",
    "STATE_SETS",
    "THINKING_MAX_NEW_TOKENS",
    "State",
    "StateSet",
    "augment_states",
    "build_messages",
    "build_system_prompt",
    "build_task",
    "get_state",
    "get_state_set",
    "get_mode",
    "is_end_signal",
    "is_thinking",
    "max_new_tokens_for",
    "prompt_versions",
    "render",
]
