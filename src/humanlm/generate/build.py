"""``build_generator``: a generator from ``hf:PATH``, ``vllm:PATH`` or ``openai:MODEL[@BASE_URL]``.

Example:
    >>> generator = build_generator("openai:my-sim@http://127.0.0.1:8001/v1", api="completions")
    ...  # doctest: +SKIP
"""

from __future__ import annotations

from humanlm.generate.hf import HFGenerator
from humanlm.generate.openai import OpenAIGenerator
from humanlm.generate.protocol import GenerationSettings, Generator
from humanlm.generate.vllm import VLLMGenerator
from humanlm.generate.vllm_settings import VLLMSettings
from humanlm.llm.specs import parse_spec

__all__ = ["GENERATOR_KINDS", "build_generator"]

GENERATOR_KINDS = ("hf", "vllm", "openai")


def build_generator(
    spec: str,
    *,
    settings: GenerationSettings | None = None,
    api: str = "chat",
    api_key_env: str | None = None,
    key_flag: str = "--simulator-api-key-env",
    ngram_xargs: bool = False,
    vllm: VLLMSettings | None = None,
) -> Generator:
    """Build the generator ``spec`` names; build one per run and share it.

    Args:
        spec: ``hf:PATH_OR_ID``, ``vllm:PATH_OR_ID`` or ``openai:MODEL[@BASE_URL]``.
        settings: ``openai:`` only: its client's ``concurrency``, ``retry`` and jitter ``seed``
            (decoding settings come with each call).
        api: ``openai:`` only: ``chat`` or ``completions`` (our rendered prompt, verbatim).
        api_key_env: ``openai:`` only: the variable holding the key (default
            ``OPENAI_API_KEY``; a server given by ``@BASE_URL`` may need none).
        key_flag: ``openai:`` only: the option that names the variable, in errors.
        ngram_xargs: ``openai:`` only: request the n-gram ban through ``vllm_xargs``.
        vllm: ``vllm:`` only: engine settings.

    Raises:
        ConfigError: unknown spec, missing key, a model that cannot load, vLLM not installed.
    """
    parsed = parse_spec(spec, role="simulator", kinds=GENERATOR_KINDS)
    if parsed.kind == "hf":
        return HFGenerator(parsed.model)
    if parsed.kind == "vllm":
        return VLLMGenerator(parsed.model, vllm=vllm)
    client = settings or GenerationSettings()
    return OpenAIGenerator(
        parsed.model,
        base_url=parsed.base_url,
        api=api,
        api_key_env=api_key_env,
        key_flag=key_flag,
        ngram_xargs=ngram_xargs,
        concurrency=client.concurrency,
        retry=client.retry,
        seed=client.seed,
    )
