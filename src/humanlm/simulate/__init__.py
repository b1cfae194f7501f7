"""User simulators behind one interface: ``hf:``, ``vllm:`` and ``openai:`` backends.

- ``build_sim_prompt(example, thinking=...)`` -> ``SimPrompt``: what a simulator is asked;
- ``build_simulator(spec, settings=GenerationSettings(...))`` -> a ``Simulator``;
- ``Simulator.generate(prompts)`` (a coroutine) -> ``Generation`` per prompt, or
  ``generate_all(simulator, prompts)`` from synchronous code;
- ``UserSimulator.from_spec(spec).reply(persona, messages)`` -> ``Reply`` (text, states, ended):
  the conversation API (``humanlm.simulate.user``);
- ``run_simulate(scenarios=..., user=..., assistant=Assistant.from_spec(...), out_dir=...)``:
  multi-turn conversations (``humanlm.simulate.conversation``).
"""

from humanlm.simulate.assistant import Assistant
from humanlm.simulate.backends import (
    Generation,
    GenerationSettings,
    Simulator,
    build_simulator,
    generate_all,
)
from humanlm.simulate.conversation import run_simulate
from humanlm.simulate.prompt import SimPrompt, build_sim_prompt
from humanlm.simulate.scenarios import Scenario, load_scenarios, scenarios_from_prepared
from humanlm.simulate.user import Reply, UserSimulator
from humanlm.states.parsing import cut_at_stop

__all__ = [
    "Assistant",
    "Generation",
    "GenerationSettings",
    "Reply",
    "Scenario",
    "SimPrompt",
    "Simulator",
    "UserSimulator",
    "build_sim_prompt",
    "build_simulator",
    "cut_at_stop",
    "generate_all",
    "load_scenarios",
    "run_simulate",
    "scenarios_from_prepared",
]
