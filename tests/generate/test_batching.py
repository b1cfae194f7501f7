"""Dynamic batching: concurrent requests share one generator call, split by settings."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from humanlm.generate import (
    BatchingGenerator,
    Generation,
    GenerationSettings,
    HFGenerator,
    SimPrompt,
)


class RecordingGenerator:
    """Echoes each prompt; records the prompts of every call."""

    spec = "recording"
    batch_size = None
    applies_ngram_ban = False
    context_length = None
    continues_prompt = True

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def count_tokens(self, text: str) -> None:
        return None

    def health(self) -> None:
        return None

    async def generate(
        self, prompts: Sequence[SimPrompt], settings: GenerationSettings
    ) -> list[Generation]:
        self.calls.append([p.text for p in prompts])
        await asyncio.sleep(0)
        return [Generation(f"{p.text}@{settings.temperature}") for p in prompts]

    async def aclose(self) -> None:
        return None


def _prompt(text: str) -> SimPrompt:
    return SimPrompt(text=text, messages=(), thinking=False)


def test_concurrent_requests_are_merged_and_answered_in_order() -> None:
    inner = RecordingGenerator()
    engine = BatchingGenerator(inner, max_batch=8, window_s=0.05)

    async def go() -> list[list[Generation]]:
        settings = GenerationSettings(temperature=0.5)
        return list(
            await asyncio.gather(*(engine.generate([_prompt(f"p{i}")], settings) for i in range(5)))
        )

    results = asyncio.run(go())
    assert [r[0].text for r in results] == [f"p{i}@0.5" for i in range(5)]
    assert inner.calls == [[f"p{i}" for i in range(5)]]
    assert engine.batch_sizes == [5]


def test_batches_are_capped_and_split_by_settings() -> None:
    inner = RecordingGenerator()
    engine = BatchingGenerator(inner, max_batch=3, window_s=0.05)

    async def go() -> None:
        cold, hot = GenerationSettings(temperature=0.1), GenerationSettings(temperature=0.9)
        await asyncio.gather(
            engine.generate([_prompt("a"), _prompt("b")], cold),
            engine.generate([_prompt("c")], hot),
            engine.generate([_prompt("d"), _prompt("e")], cold),
        )

    asyncio.run(go())
    assert inner.calls == [["a", "b"], ["c"], ["d", "e"]]
    assert max(engine.batch_sizes) <= 3


def test_hf_generator_batched_matches_its_settings(tiny_model_dir: Path) -> None:
    engine = BatchingGenerator(HFGenerator(str(tiny_model_dir)), max_batch=4)

    async def go() -> list[list[Generation]]:
        settings = GenerationSettings(temperature=0.0, max_new_tokens=4, stop=())
        return list(
            await asyncio.gather(
                *(engine.generate([_prompt(f"hello {i}")], settings) for i in range(4))
            )
        )

    results = asyncio.run(go())
    assert all(r[0].completion_tokens == 4 and r[0].finish_reason == "length" for r in results)
    assert sum(engine.batch_sizes) == 4
