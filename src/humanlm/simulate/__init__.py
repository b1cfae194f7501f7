"""User simulators: one reply at a time (``UserSimulator``) and whole conversations.

- ``UserSimulator.from_spec(spec).reply(persona, messages)`` -> ``Reply`` (text, states, ended):
  the conversation API (``humanlm.simulate.user``; a ``humanlm serve`` URL gives a
  ``ServedUserSimulator``);
- ``run_simulate(scenarios=..., user=..., assistant=Assistant.from_spec(...), out_dir=...)``:
  multi-turn conversations (``humanlm.simulate.conversation``).

Prompts become text through ``humanlm.generate`` (``build_generator``, ``GenerationSettings``);
``GenerationSettings`` is named here too, for ``UserSimulator(settings=...)``.
"""

from humanlm.generate.protocol import GenerationSettings
from humanlm.simulate.assistant import Assistant
from humanlm.simulate.conversation import run_simulate
from humanlm.simulate.messages import ConversationError
from humanlm.simulate.reply import Reply
from humanlm.simulate.scenarios import Scenario, load_scenarios, scenarios_from_prepared
from humanlm.simulate.served import ServedUserSimulator
from humanlm.simulate.user import UserSimulator

__all__ = [
    "Assistant",
    "ConversationError",
    "GenerationSettings",
    "Reply",
    "Scenario",
    "ServedUserSimulator",
    "UserSimulator",
    "load_scenarios",
    "run_simulate",
    "scenarios_from_prepared",
]
