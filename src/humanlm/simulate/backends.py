"""Simulator backends, chosen by a spec string.

- ``hf:PATH_OR_ID``: transformers, batched, CPU or GPU, with our chat template and the no-repeat
  n-gram ban;
- ``vllm:PATH_OR_ID``: vLLM offline engine (optional import);
- ``openai:MODEL@URL``: any OpenAI-compatible endpoint, concurrent and retried.

Every backend takes rendered prompt text (our template already applied) and returns the raw
completion text, thinking included, so parsing is the same for all of them.

Example:
    >>> sim = build_simulator("hf:runs/demo/model", settings=GenerationSettings())  # doctest: +SKIP
    >>> outputs = sim.generate(["<|im_start|>system ..."])  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from humanlm.errors import ConfigError, HumanlmError

__all__ = ["GenerationSettings", "Simulator", "build_simulator"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings (paper eval protocol by default).

    Attributes:
        temperature: sampling temperature (0 means greedy).
        max_new_tokens: generation budget per prompt.
        no_repeat_ngram_size: ban tokens that would repeat an earlier n-gram of the output (0: off).
        batch_size: prompts per forward batch (``hf:``) or requests in flight (``openai:``).
        seed: sampling seed.
        stop: stop strings (closing tags).
    """

    temperature: float = 0.4
    max_new_tokens: int = 1024
    no_repeat_ngram_size: int = 4
    batch_size: int = 8
    seed: int = 0
    stop: tuple[str, ...] = ("</response>",)


class Simulator(Protocol):
    """Anything that turns rendered prompts into raw completions."""

    spec: str

    def generate(self, prompts: Sequence[str]) -> list[str]: ...


class HFSimulator:
    """transformers ``generate`` in batches, left-padded, with the n-gram ban on the output."""

    def __init__(self, path: str, *, settings: GenerationSettings):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.spec = f"hf:{path}"
        self.settings = settings
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()

    def generate(self, prompts: Sequence[str]) -> list[str]:
        import torch
        from transformers import LogitsProcessorList

        from humanlm.model.ngram import NoRepeatNGramLogitsProcessor

        s = self.settings
        outputs: list[str] = []
        torch.manual_seed(s.seed)
        for start in range(0, len(prompts), s.batch_size):
            batch = list(prompts[start : start + s.batch_size])
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            prompt_len = enc["input_ids"].shape[1]
            processors = LogitsProcessorList()
            if s.no_repeat_ngram_size:
                processors.append(
                    NoRepeatNGramLogitsProcessor(s.no_repeat_ngram_size, prompt_length=prompt_len)
                )
            sampling = (
                {"do_sample": True, "temperature": s.temperature}
                if s.temperature > 0
                else {"do_sample": False}
            )
            with torch.no_grad():
                out = self.model.generate(
                    **enc,
                    max_new_tokens=s.max_new_tokens,
                    logits_processor=processors,
                    stop_strings=list(s.stop) or None,
                    tokenizer=self.tokenizer,
                    pad_token_id=self.tokenizer.pad_token_id,
                    **sampling,
                )
            for row in out[:, prompt_len:]:
                outputs.append(self.tokenizer.decode(row, skip_special_tokens=True))
        return outputs


class VLLMSimulator:
    """vLLM's offline engine (GPU). The n-gram ban is not available in vLLM V1; we say so."""

    def __init__(self, path: str, *, settings: GenerationSettings):
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise ConfigError(
                "the vllm: backend needs vLLM: pip install 'humanlm[vllm]' (GPU machines only)"
            ) from None
        self.spec = f"vllm:{path}"
        self.settings = settings
        if settings.no_repeat_ngram_size:
            logger.warning("vLLM V1 has no per-request n-gram ban; generating without it")
        self._llm = LLM(model=path, seed=settings.seed)
        self._params = SamplingParams(
            temperature=settings.temperature,
            max_tokens=settings.max_new_tokens,
            stop=list(settings.stop),
            include_stop_str_in_output=True,
            seed=settings.seed,
        )

    def generate(self, prompts: Sequence[str]) -> list[str]:
        results = self._llm.generate(list(prompts), self._params)
        return [r.outputs[0].text for r in results]


class OpenAISimulator:
    """Completions from any OpenAI-compatible server, concurrent, retried with backoff."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        settings: GenerationSettings,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 120.0,
        max_retries: int = 4,
    ):
        import openai

        self.spec = f"openai:{model}" + (f"@{base_url}" if base_url else "")
        self.model = model
        self.settings = settings
        self.max_retries = max_retries
        api_key = os.environ.get(api_key_env) or ("EMPTY" if base_url else None)
        if api_key is None:
            raise ConfigError(f"the openai: simulator needs an API key in ${api_key_env}")
        self._make_client = lambda: openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    async def _one(self, client: Any, prompt: str, sem: asyncio.Semaphore) -> str:
        import openai

        s = self.settings
        for attempt in range(self.max_retries + 1):
            try:
                async with sem:
                    reply = await client.completions.create(
                        model=self.model,
                        prompt=prompt,
                        temperature=s.temperature,
                        max_tokens=s.max_new_tokens,
                        stop=list(s.stop) or None,
                        seed=s.seed,
                    )
                text = reply.choices[0].text or ""
                # A server stops before the stop string; put the closing tag back for parsing.
                if getattr(reply.choices[0], "finish_reason", None) == "stop" and s.stop:
                    opened = [t for t in s.stop if t.replace("</", "<") in text and t not in text]
                    text += opened[0] if opened else ""
                return text
            except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                    openai.InternalServerError) as err:
                if attempt == self.max_retries:
                    raise HumanlmError(f"simulator {self.spec} failed after retries: {type(err).__name__}") from None
                await asyncio.sleep(min(8.0, 0.5 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def generate(self, prompts: Sequence[str]) -> list[str]:
        async def _all() -> list[str]:
            client = self._make_client()
            sem = asyncio.Semaphore(self.settings.batch_size)
            try:
                return await asyncio.gather(*(self._one(client, p, sem) for p in prompts))
            finally:
                await client.close()

        return asyncio.run(_all())


def build_simulator(spec: str, *, settings: GenerationSettings, **options: Any) -> Simulator:
    """Build a simulator from ``hf:PATH``, ``vllm:PATH`` or ``openai:MODEL[@URL]``."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ConfigError(f"simulator spec {spec!r}: expected hf:PATH, vllm:PATH or openai:MODEL@URL")
    if kind == "hf":
        return HFSimulator(rest, settings=settings)
    if kind == "vllm":
        return VLLMSimulator(rest, settings=settings)
    if kind == "openai":
        model, _, url = rest.partition("@")
        return OpenAISimulator(model, base_url=url or None, settings=settings, **options)
    raise ConfigError(f"simulator spec {spec!r}: unknown backend {kind!r}; use hf, vllm or openai")
