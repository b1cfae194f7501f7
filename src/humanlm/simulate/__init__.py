"""User simulators behind one interface: ``hf:``, ``vllm:`` and ``openai:`` backends."""

from humanlm.simulate.backends import GenerationSettings, Simulator, build_simulator

__all__ = ["GenerationSettings", "Simulator", "build_simulator"]
