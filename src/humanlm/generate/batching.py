"""Dynamic batching: concurrent requests to an ``hf:`` model share one ``generate`` call.

A request waits in a queue; a single worker takes the first one, collects whatever else arrives
within a few milliseconds (up to ``max_batch`` prompts), and runs them as one batch. Requests
with different decoding settings cannot share a ``generate`` call, so a batch is split by
settings; the seed is not one of them for ``hf:``, whose rows each sample with their own seed.
While a batch runs, the next one fills up.

A request that is cancelled (its client left) costs nothing more: its prompts are dropped if they
are still waiting, and on ``hf:`` its rows of a running batch stop at the next token.

Example:
    >>> generator = BatchingGenerator(HFGenerator("runs/demo/humanlm/model"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from humanlm.generate.hf import HFGenerator, Row
from humanlm.generate.prompt import SimPrompt
from humanlm.generate.protocol import Generation, GenerationSettings, Generator, row_seed

__all__ = ["BatchingGenerator"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Pending:
    """One queued prompt: the request's settings, the prompt's own seed, where its answer goes,
    and an event set when the request is cancelled."""

    prompt: SimPrompt
    settings: GenerationSettings
    seed: int
    future: asyncio.Future
    abandoned: threading.Event


class BatchingGenerator:
    """Wrap a generator so concurrent ``generate`` calls are merged into batches.

    Args:
        generator: the generator doing the work (one call at a time).
        max_batch: the most prompts in one ``generate`` call.
        window_s: how long the first request of a batch waits for company. 20 ms is little
            beside a reply's generation, and long enough for 32 concurrent requests through
            uvicorn to arrive (at 5 ms they were split into batches of 27 and 5).

    Attributes:
        batch_sizes: prompts per call of the wrapped generator, in order (for benchmarks).
    """

    def __init__(self, generator: Generator, *, max_batch: int = 32, window_s: float = 0.02):
        if max_batch < 1 or window_s < 0:
            raise ValueError("max_batch must be >= 1 and window_s >= 0")
        self.generator = generator
        self.spec = generator.spec
        self.batch_size = generator.batch_size
        self.applies_ngram_ban = generator.applies_ngram_ban
        self.context_length = generator.context_length
        self.continues_prompt = generator.continues_prompt
        self.max_batch = max_batch
        self.window_s = window_s
        self.batch_sizes: list[int] = []
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task | None = None

    def __repr__(self) -> str:
        return f"BatchingGenerator({self.generator!r}, max_batch={self.max_batch})"

    def count_tokens(self, text: str) -> int | None:
        return self.generator.count_tokens(text)

    def health(self) -> str | None:
        return self.generator.health()

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run())
        # One batch holds at most max_batch prompts, so that is the wrapped batch size too.
        settings = dataclasses.replace(settings, batch_size=self.max_batch)
        futures = []
        for i, prompt in enumerate(prompts):
            future: asyncio.Future = loop.create_future()
            abandoned = threading.Event()
            future.add_done_callback(lambda f, e=abandoned: e.set() if f.cancelled() else None)
            seed = row_seed(settings.seed, i)
            self._queue.put_nowait(_Pending(prompt, settings, seed, future, abandoned))
            futures.append(future)
        # Cancelling this call (the client left) cancels each future, which sets its event.
        return list(await asyncio.gather(*futures))

    async def _collect(self) -> list[_Pending]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        deadline = loop.time() + self.window_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except (asyncio.TimeoutError, TimeoutError):
                break
        return batch

    def _group_key(self, settings: GenerationSettings) -> GenerationSettings:
        # hf: rows carry their own seeds, so requests that differ only in the seed share a batch.
        if isinstance(self.generator, HFGenerator):
            return dataclasses.replace(settings, seed=0)
        return settings

    async def _generate(
        self, items: list[_Pending], settings: GenerationSettings
    ) -> list[Generation]:
        if isinstance(self.generator, HFGenerator):
            rows = [Row(p.prompt.text, p.seed, p.abandoned) for p in items]
            return await asyncio.to_thread(self.generator.generate_rows, rows, settings)
        return await self.generator.generate([p.prompt for p in items], settings)

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            groups: dict[GenerationSettings, list[_Pending]] = {}
            for item in batch:
                groups.setdefault(self._group_key(item.settings), []).append(item)
            for settings, items in groups.items():
                live = [p for p in items if not p.future.done()]  # a client may have left
                if not live:
                    continue
                self.batch_sizes.append(len(live))
                try:
                    outputs = await self._generate(live, settings)
                except Exception as exc:  # hand the error to each waiting request
                    logger.exception("generation failed for a batch of %d", len(live))
                    for p in live:
                        if not p.future.done():
                            p.future.set_exception(exc)
                    continue
                for p, output in zip(live, outputs, strict=True):
                    if not p.future.done():
                        p.future.set_result(output)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        await self.generator.aclose()
