"""Dynamic batching: concurrent requests to an ``hf:`` model share one ``generate`` call.

A request waits in a queue; a single worker takes the first one, collects whatever else arrives
within a few milliseconds (up to ``max_batch`` prompts), and runs them as one batch. Requests
with different decoding settings cannot share a ``generate`` call, so a batch is split by
settings. While a batch runs, the next one fills up.

Example:
    >>> generator = BatchingGenerator(HFGenerator("runs/demo/humanlm/model"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from humanlm.generate.prompt import SimPrompt
from humanlm.generate.protocol import Generation, GenerationSettings, Generator

__all__ = ["BatchingGenerator"]

logger = logging.getLogger(__name__)


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
        self._queue: asyncio.Queue[tuple[SimPrompt, GenerationSettings, asyncio.Future]] | None = (
            None
        )
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
        for prompt in prompts:
            future: asyncio.Future = loop.create_future()
            self._queue.put_nowait((prompt, settings, future))
            futures.append(future)
        return list(await asyncio.gather(*futures))

    async def _collect(self) -> list[tuple[SimPrompt, GenerationSettings, asyncio.Future]]:
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

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            groups: dict[GenerationSettings, list[Any]] = {}
            for item in batch:
                groups.setdefault(item[1], []).append(item)
            for settings, items in groups.items():
                live = [item for item in items if not item[2].done()]  # a client may have left
                if not live:
                    continue
                self.batch_sizes.append(len(live))
                try:
                    outputs = await self.generator.generate([p for p, _, _ in live], settings)
                except Exception as exc:  # hand the error to each waiting request
                    logger.exception("generation failed for a batch of %d", len(live))
                    for _, _, future in live:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, _, future), output in zip(live, outputs, strict=True):
                    if not future.done():
                        future.set_result(output)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        await self.generator.aclose()
