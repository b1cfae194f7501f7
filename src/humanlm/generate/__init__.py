"""One way to turn simulator prompts into text, for eval, serve, simulate and the demo.

- ``build_sim_prompt(example, thinking=...)`` -> ``SimPrompt``: what a simulator is asked;
- ``build_generator(spec)`` -> a ``Generator`` (``hf:``, ``vllm:``, ``openai:``), built once
  per run;
- ``await generator.generate(prompts, GenerationSettings(...))`` -> one ``Generation`` per
  prompt, or ``generate_all(generator, prompts, settings)`` from synchronous code;
- ``BatchingGenerator(generator)``: concurrent calls to an ``hf:`` model share one batch.

Modules: ``protocol`` (the interface and its data), ``prompt``, ``hf``, ``vllm`` (with
``vllm_settings``), ``openai``, ``batching``, ``build``.
"""

from humanlm._lazy import lazy_exports
from humanlm.generate.prompt import SimPrompt, build_sim_prompt
from humanlm.generate.protocol import (
    Generation,
    GenerationSettings,
    Generator,
    failure_reason,
    generate_all,
)
from humanlm.generate.vllm_settings import VLLMSettings

# The backends import torch or aiohttp: loaded when first named.
_WHERE = {
    "BatchingGenerator": "batching",
    "GENERATOR_KINDS": "build",
    "HFGenerator": "hf",
    "OPENAI_APIS": "openai",
    "OpenAIGenerator": "openai",
    "VLLMGenerator": "vllm",
    "build_generator": "build",
}

__getattr__ = lazy_exports(__name__, _WHERE)

__all__ = [
    "GENERATOR_KINDS",
    "OPENAI_APIS",
    "BatchingGenerator",
    "Generation",
    "GenerationSettings",
    "Generator",
    "HFGenerator",
    "OpenAIGenerator",
    "SimPrompt",
    "VLLMGenerator",
    "VLLMSettings",
    "build_generator",
    "build_sim_prompt",
    "failure_reason",
    "generate_all",
]
