"""User simulators behind one interface: ``hf:``, ``vllm:`` and ``openai:`` backends.

- ``build_sim_prompt(example, thinking=...)`` -> ``SimPrompt``: what a simulator is asked;
- ``build_simulator(spec, settings=GenerationSettings(...))`` -> a ``Simulator``;
- ``Simulator.generate(prompts)`` (a coroutine) -> ``Generation`` per prompt, or
  ``generate_all(simulator, prompts)`` from synchronous code.
"""

from humanlm.simulate.backends import (
    Generation,
    GenerationSettings,
    Simulator,
    build_simulator,
    cut_at_stop,
    generate_all,
)
from humanlm.simulate.prompt import SimPrompt, build_sim_prompt

__all__ = [
    "Generation",
    "GenerationSettings",
    "SimPrompt",
    "Simulator",
    "build_sim_prompt",
    "build_simulator",
    "cut_at_stop",
    "generate_all",
]
