"""The latent user states, defined once as data.

Everything that mentions a state (prompts, parsing, rewards, judges, reports) reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from humanlm.errors import ConfigError

__all__ = [
    "LATENT_STATES",
    "RESPONSE",
    "STATES",
    "STATE_NAMES",
    "STATE_SETS",
    "State",
    "StateSet",
    "get_state",
    "get_state_set",
]

RESPONSE = "response"


@dataclass(frozen=True)
class State:
    """One latent state (or the response) the simulator writes.

    Attributes:
        name: identifier, also the XML tag the model writes (``<stance>...</stance>``).
        description: what the state means; shown to the simulator and to the judge.
        max_words: soft length limit given to the simulator.
        max_new_tokens: generation budget for this state without thinking.
    """

    name: str
    description: str
    max_words: int
    max_new_tokens: int

    @property
    def open_tag(self) -> str:
        return f"<{self.name}>"

    @property
    def close_tag(self) -> str:
        return f"</{self.name}>"


_STATE_LIST = (
    State(
        "stance",
        "Whether the user agrees or disagrees with an explicitly named target, and how strongly "
        "(e.g. 'firmly sides with the poster'); several stances are separated by ';'.",
        15,
        48,
    ),
    State(
        "emotion",
        "The emotion the user feels, how intense it is, and what it is aimed at "
        "(e.g. 'mild irritation at the landlord').",
        15,
        48,
    ),
    State(
        "belief",
        "A general assumption the user holds about how people or the world work: a mental model, "
        "not advice and not tied to this specific target.",
        15,
        48,
    ),
    State(
        "value",
        "What the user thinks should matter or be prioritised in this situation.",
        15,
        48,
    ),
    State(
        "goal",
        "What the user is trying to achieve with this reply (persuade, mock, support, ask, ...).",
        15,
        48,
    ),
    State(
        "communication",
        "The tone and structure of the user's message (not its exact wording).",
        15,
        48,
    ),
    State(
        RESPONSE,
        "The reply the user actually writes.",
        0,
        512,
    ),
)

STATES: dict[str, State] = {s.name: s for s in _STATE_LIST}
STATE_NAMES: tuple[str, ...] = tuple(STATES)
LATENT_STATES: tuple[str, ...] = tuple(n for n in STATE_NAMES if n != RESPONSE)


@dataclass(frozen=True)
class StateSet:
    """A named set of outputs a training example is expanded into.

    Attributes:
        name: ``sebvgcr``, ``r``, ``r_no_tag`` or ``think_r``.
        states: the state names, one training row each.
        tagged: outputs are wrapped in ``<state>`` tags (``r_no_tag`` writes the raw reply).
        thinking: thinking is on for the response (states never think: hetero thinking).
    """

    name: str
    states: tuple[str, ...]
    tagged: bool = True
    thinking: bool = False


STATE_SETS: dict[str, StateSet] = {
    "sebvgcr": StateSet("sebvgcr", STATE_NAMES, tagged=True, thinking=True),
    "r": StateSet("r", (RESPONSE,), tagged=True, thinking=False),
    "r_no_tag": StateSet("r_no_tag", (RESPONSE,), tagged=False, thinking=False),
    "think_r": StateSet("think_r", (RESPONSE,), tagged=True, thinking=True),
}


def get_state(name: str) -> State:
    """Return the state called ``name``; raise ConfigError listing the known ones otherwise."""
    try:
        return STATES[name]
    except KeyError:
        raise ConfigError(f"unknown state {name!r}; known states: {', '.join(STATES)}") from None


def get_state_set(name: str) -> StateSet:
    """Return the state set called ``name``; raise ConfigError listing the known ones otherwise."""
    try:
        return STATE_SETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown state set {name!r}; known sets: {', '.join(STATE_SETS)}"
        ) from None
