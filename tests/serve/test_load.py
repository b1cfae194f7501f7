"""A load test of ``humanlm serve`` (issue 24): well-behaved clients among huge, abandoned and
malformed ones, all at once, through real HTTP. The well-behaved ones are all answered, none
slowly, and the server is alive at the end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import RunningServer, start_server, stop_server

PERSONA = "A retired teacher who writes short, polite messages."
MALFORMED = [
    b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud83d"}]}',  # cut emoji
    b'{"model": "tiny", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "n": 1000}',
    b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "top_p": NaN}',
    b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}',  # cut short
    b"\xff\xfe not even text",
]


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path) -> Iterator[RunningServer]:
    server = start_server(
        tiny_model_dir, "--mode", "grpo", "--served-name", "tiny", "--context-length", "4096"
    )
    yield server
    stop_server(server)


def _chat(text: str, **fields: object) -> dict:
    messages = [{"role": "system", "content": PERSONA}, {"role": "assistant", "content": text}]
    return {"model": "tiny", "messages": messages, **fields}


async def _well_behaved(client: httpx.AsyncClient, i: int) -> float:
    await asyncio.sleep(0.1 * i)  # arriving among the others, not before them
    started = time.monotonic()
    answer = await client.post("/chat/completions", json=_chat(f"Question {i}?", max_tokens=8))
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["role"] == "assistant"
    return time.monotonic() - started


async def _huge(client: httpx.AsyncClient, i: int) -> None:
    body = _chat("Tell me everything. " * (150_000 + i))  # 3 MB, far past the context
    answer = await client.post("/chat/completions", json=body)
    assert answer.json()["error"]["code"] == "context_length_exceeded"


async def _too_large(client: httpx.AsyncClient) -> None:
    answer = await client.post("/chat/completions", content=b"x" * (9 << 20))
    assert answer.status_code == 413


async def _abandoned(client: httpx.AsyncClient, i: int) -> None:
    with pytest.raises(httpx.TimeoutException):
        await client.post(
            "/chat/completions", json=_chat(f"Go on {i}", max_tokens=3000), timeout=1.0
        )


async def _malformed(client: httpx.AsyncClient, raw: bytes) -> None:
    answer = await client.post("/chat/completions", content=raw)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["error"]["message"]


def test_well_behaved_clients_are_served_among_hostile_ones(loaded: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {loaded.api_key}", "Content-Type": "application/json"}

    async def go() -> list[float]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(
            base_url=loaded.base_url, headers=headers, timeout=300, limits=limits
        ) as client:
            hostile = [_huge(client, i) for i in range(3)] + [_too_large(client)]
            hostile += [_abandoned(client, i) for i in range(12)]
            hostile += [_malformed(client, raw) for raw in MALFORMED * 3]
            good = asyncio.gather(*(_well_behaved(client, i) for i in range(24)))
            latencies, _ = await asyncio.gather(good, asyncio.gather(*hostile))
        return latencies

    latencies = sorted(asyncio.run(go()))
    assert len(latencies) == 24
    assert latencies[-1] < 30  # p99 (of 24: the slowest), loosely: a busy 2-core machine
    assert loaded.process.poll() is None
    health = httpx.get(loaded.base_url.removesuffix("/v1") + "/health", timeout=30)
    assert health.json()["status"] == "ok"
