"""The ``hf:`` generator: transformers ``generate`` on the rendered prompt text (CPU or one GPU).

Prompts go in left-padded batches of ``settings.batch_size``, one batch at a time, with our
no-repeat n-gram ban as a logits processor, stopped at the closing tags. Each row samples with its
own seeded ``torch.Generator`` (``row_seed(settings.seed, i)`` for the i-th prompt of a call): a
prompt's reply does not depend on the other rows of its batch, so requests with different seeds
can share one forward pass (``BatchingGenerator``). transformers' ``generate`` draws every row
from one global generator, so the sampling step is ours (``RowSampler``): it draws the token and
leaves it the only finite score, and ``generate``'s greedy step picks it.

Example:
    >>> generator = HFGenerator("runs/demo/humanlm/model")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria

from humanlm.errors import ConfigError
from humanlm.generate.prompt import SimPrompt
from humanlm.generate.protocol import Generation, GenerationSettings, row_seed
from humanlm.states.parsing import cut_at_stop

__all__ = ["HFGenerator", "Row", "RowSampler"]

_STOP_CACHE = 16  # stop-string tables kept (each is a few MB for a 150k vocabulary)


@dataclass(frozen=True)
class Row:
    """One prompt of a batch: its text, its sampling seed, and an event set when its client left
    (the row then stops at the next step)."""

    text: str
    seed: int
    abandoned: threading.Event | None = None


class RowSampler(LogitsProcessor):
    """Temperature, top-p and a draw from each row's own seeded generator.

    Runs last among the logits processors, with ``do_sample=False``: every score but the drawn
    token's becomes ``-inf``, so the greedy step returns the draw.
    """

    def __init__(self, seeds: Sequence[int], *, temperature: float, top_p: float, device: Any):
        self.temperature, self.top_p, self.device = temperature, top_p, device
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(scores.double() / self.temperature, dim=-1)
        if self.top_p < 1.0:  # keep the smallest set of tokens whose mass reaches top_p
            ordered, order = probs.sort(dim=-1, descending=True)
            outside = ordered.cumsum(dim=-1) - ordered > self.top_p
            probs = probs.scatter(-1, order, ordered.masked_fill(outside, 0.0))
        # Inverse CDF: one uniform number per row from its own generator (a per-row
        # ``torch.multinomial`` is 40x slower over a 150k vocabulary).
        draws = torch.cat(
            [
                torch.rand(1, generator=g, device=self.device, dtype=probs.dtype)
                for g in self.generators
            ]
        )
        cdf = probs.cumsum(dim=-1)
        drawn = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None], right=True)
        drawn = drawn.clamp_(max=scores.shape[-1] - 1)
        chosen = torch.full_like(scores, float("-inf"))
        return chosen.scatter_(1, drawn, 0.0)


class _StopAbandoned(StoppingCriteria):
    """Ends the rows whose client left; ``generate`` ends when every row has."""

    def __init__(self, events: Sequence[threading.Event | None]):
        self.events = events

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
        gone = [e is not None and e.is_set() for e in self.events]
        return torch.tensor(gone, dtype=torch.bool, device=input_ids.device)


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
        from tokenizers import Tokenizer
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
        # The Rust tokenizer refuses concurrent use ("Already borrowed"): ``encode`` sets its
        # padding on every call.
        self._tokenizer_lock = threading.Lock()
        # Counting gets its own copy, never changed after this, so concurrent counts (a server's
        # requests, in threads) need no lock and a huge prompt holds up nobody's batch.
        self._counter = Tokenizer.from_str(self.tokenizer.backend_tokenizer.to_str())
        self._counter.no_padding()
        self._counter.no_truncation()
        self._stopping: OrderedDict[tuple[str, ...], Any] = OrderedDict()

    def __repr__(self) -> str:
        return f"HFGenerator(spec={self.spec!r}, device={self.device!r})"

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        return await asyncio.to_thread(self.generate_texts, [p.text for p in prompts], settings)

    def count_tokens(self, text: str) -> int:
        """Tokens of a rendered prompt (no special tokens added: the template has them).

        Thread-safe; ``encode_batch`` lets go of the GIL while it works, so counting a long
        prompt in a thread does not hold up the caller's event loop."""
        return len(self._counter.encode_batch([text], add_special_tokens=False)[0].ids)

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
        """``generate`` for rendered prompt texts, from synchronous code (blocking)."""
        rows = [Row(text, row_seed(settings.seed, i)) for i, text in enumerate(texts)]
        return self.generate_rows(rows, settings)

    def generate_rows(self, rows: Sequence[Row], settings: GenerationSettings) -> list[Generation]:
        """Generate for rendered prompts (blocking), in batches of ``settings.batch_size``; each
        row samples with its own seed (``settings.seed`` is not read)."""
        with self._lock:
            out: list[Generation] = []
            for start in range(0, len(rows), settings.batch_size):
                out.extend(self._batch(list(rows[start : start + settings.batch_size]), settings))
            return out

    def _stop_criteria(self, stop: tuple[str, ...]) -> Any:
        # Built once per stop tuple: ``stop_strings=`` would rebuild its tables (~1 s) each call.
        # The newest few are kept: a server's clients may send many different stops.
        from transformers import StoppingCriteriaList, StopStringCriteria

        if stop not in self._stopping:
            with self._tokenizer_lock:
                criteria = [StopStringCriteria(self.tokenizer, list(stop))] if stop else []
            self._stopping[stop] = StoppingCriteriaList(criteria)
            while len(self._stopping) > _STOP_CACHE:
                self._stopping.popitem(last=False)
        self._stopping.move_to_end(stop)
        return self._stopping[stop]

    def _batch(self, rows: list[Row], s: GenerationSettings) -> list[Generation]:
        from transformers import LogitsProcessorList, StoppingCriteriaList

        from humanlm.model.ngram import NoRepeatNGramLogitsProcessor, scope_think_ids

        enc = {k: v.to(self.device) for k, v in self.encode([r.text for r in rows]).items()}
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
        if s.temperature > 0:  # after the ban: it samples from what the ban left
            seeds = [r.seed for r in rows]
            processors.append(
                RowSampler(seeds, temperature=s.temperature, top_p=s.top_p, device=self.device)
            )
        stopping = StoppingCriteriaList(self._stop_criteria(tuple(s.stop)))
        if any(r.abandoned is not None for r in rows):
            stopping.append(_StopAbandoned([r.abandoned for r in rows]))
        with torch.no_grad():
            ids = self.model.generate(
                **enc,
                max_new_tokens=s.max_new_tokens,
                logits_processor=processors,
                stopping_criteria=stopping,
                pad_token_id=self.tokenizer.pad_token_id,
                do_sample=False,
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
