"""The ``hf:`` generator: transformers ``generate`` on the rendered prompt text (CPU or one GPU).

Prompts go in left-padded batches of ``settings.batch_size``, one batch at a time, with our
no-repeat n-gram ban as a logits processor, stopped at the closing tags. Each batch is seeded with
``settings.seed``, so a request repeated alone gives the same reply as in company.

Example:
    >>> generator = HFGenerator("runs/demo/humanlm/model")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from humanlm.errors import ConfigError
from humanlm.generate.prompt import SimPrompt
from humanlm.generate.protocol import Generation, GenerationSettings
from humanlm.states.parsing import cut_at_stop

__all__ = ["HFGenerator"]


class HFGenerator:
    """transformers ``generate`` in left-padded batches.

    Args:
        path: a local folder or hub id (a causal LM with a tokenizer).

    Raises:
        ConfigError: the model or its tokenizer cannot be loaded.
    """

    batch_size = None  # the settings' batch size
    applies_ngram_ban = True
    continues_prompt = True

    def __init__(self, path: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.spec = f"hf:{path}"
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        except (OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"hf:{path}: cannot load the model ({first})") from None
        self.model = model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.context_length = getattr(self.model.config, "max_position_embeddings", None)
        self._lock = threading.Lock()  # one batch at a time: the model is not shared
        # The Rust tokenizer refuses concurrent use ("Already borrowed"): a server counts prompt
        # tokens on its event loop while a batch is encoded in the worker thread.
        self._tokenizer_lock = threading.Lock()
        self._stopping: dict[tuple[str, ...], Any] = {}

    def __repr__(self) -> str:
        return f"HFGenerator(spec={self.spec!r}, device={self.device!r})"

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        return await asyncio.to_thread(self.generate_texts, [p.text for p in prompts], settings)

    def count_tokens(self, text: str) -> int:
        """Tokens of a rendered prompt (no special tokens added: the template has them)."""
        with self._tokenizer_lock:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, texts: list[str]) -> Any:
        """The left-padded model inputs of ``texts`` (no special tokens added: the template
        has them)."""
        with self._tokenizer_lock:
            return self.tokenizer(
                texts, return_tensors="pt", padding=True, add_special_tokens=False
            )

    def health(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def generate_texts(
        self, texts: Sequence[str], settings: GenerationSettings
    ) -> list[Generation]:
        """Generate for rendered prompts (blocking), in batches of ``settings.batch_size``."""
        with self._lock:
            out: list[Generation] = []
            for start in range(0, len(texts), settings.batch_size):
                out.extend(self._batch(list(texts[start : start + settings.batch_size]), settings))
            return out

    def _stop_criteria(self, stop: tuple[str, ...]) -> Any:
        # Built once per stop tuple: ``stop_strings=`` would rebuild its tables (~1 s) each call.
        from transformers import StoppingCriteriaList, StopStringCriteria

        if stop not in self._stopping:
            with self._tokenizer_lock:
                criteria = [StopStringCriteria(self.tokenizer, list(stop))] if stop else []
            self._stopping[stop] = StoppingCriteriaList(criteria)
        return self._stopping[stop]

    def _batch(self, texts: list[str], s: GenerationSettings) -> list[Generation]:
        import torch
        from transformers import LogitsProcessorList

        from humanlm.model.ngram import NoRepeatNGramLogitsProcessor, scope_think_ids

        torch.manual_seed(s.seed)
        enc = {k: v.to(self.device) for k, v in self.encode(texts).items()}
        padded_len = enc["input_ids"].shape[1]
        processors = LogitsProcessorList()
        if s.no_repeat_ngram_size:
            with self._tokenizer_lock:
                think_ids = scope_think_ids(s.ngram_ban_scope, self.tokenizer)
            # Counting from the padded length skips prompt and pads; the scope may skip thinking.
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
        with torch.no_grad():
            ids = self.model.generate(
                **enc,
                max_new_tokens=s.max_new_tokens,
                logits_processor=processors,
                stopping_criteria=self._stop_criteria(tuple(s.stop)),
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        rows = ids[:, padded_len:]
        with self._tokenizer_lock:
            texts_out = [self.tokenizer.decode(row, skip_special_tokens=True) for row in rows]
        results = []
        for row, text in zip(rows, texts_out, strict=True):
            length = int((row != self.tokenizer.pad_token_id).sum())
            cut = cut_at_stop(text, s.stop)
            stopped = cut != text or text.endswith(tuple(s.stop)) or length < s.max_new_tokens
            finish = "stop" if stopped else "length"
            results.append(Generation(cut, finish_reason=finish, completion_tokens=length))
        return results
