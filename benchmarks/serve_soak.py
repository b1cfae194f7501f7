"""Soak ``humanlm serve``: rounds of well-behaved, huge, abandoned and malformed clients, with
the server's resident memory (RSS) before and after.

A real ``humanlm serve`` process (``hf:``, the offline tiny model built into a temporary folder)
on 127.0.0.1 gets, each round and all at once: ``--good`` short chat requests, ``--big``
messages of 200 KB (past the 4,096-token context: refused after counting), one 9 MB body (413),
``--abandoned`` clients that leave after a second with 3,000 tokens asked, and malformed bodies
(a lone surrogate, 100,000 nested brackets, NaN, cut JSON). It prints each round's latency of
the well-behaved requests and the RSS; the server must stay alive and its memory flat.

Run:
    .venv/bin/python benchmarks/serve_soak.py                  # 5 rounds
    .venv/bin/python benchmarks/serve_soak.py --rounds 20 --big 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from humanlm.model.tiny import build_tiny_model

PERSONA = "A graduate student who writes short, direct messages."
MALFORMED = [
    b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud83d"}]}',
    b'{"model": "tiny", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "top_p": NaN}',
    b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}',
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chat(text: str, **fields: object) -> dict:
    messages = [{"role": "system", "content": PERSONA}, {"role": "assistant", "content": text}]
    return {"model": "tiny", "messages": messages, **fields}


def start(model_dir: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "humanlm.cli.main", "serve", "--model", f"hf:{model_dir}"]
    command += ["--port", str(port), "--mode", "grpo", "--context-length", "4096"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        if process.poll() is not None:
            raise SystemExit("humanlm serve exited before it was healthy")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("humanlm serve did not become healthy in 120 s")


async def one_round(base: str, *, good: int, big: int, abandoned: int) -> list[float]:
    async def well_behaved(client: httpx.AsyncClient, i: int) -> float:
        started = time.perf_counter()
        answer = await client.post("/v1/chat/completions", json=_chat(f"Q{i}?", max_tokens=8))
        answer.raise_for_status()
        return time.perf_counter() - started

    async def hostile(client: httpx.AsyncClient, **request: object) -> None:
        try:
            await client.post("/v1/chat/completions", **request)
        except httpx.TimeoutException:
            pass  # the abandoned ones leave

    limits = httpx.Limits(max_connections=500)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:
        bad = [hostile(client, json=_chat("x" * 200_000 + str(i))) for i in range(big)]
        bad += [hostile(client, content=b"x" * (9 << 20))]
        bad += [
            hostile(client, json=_chat(f"Go on {i}", max_tokens=3000), timeout=1.0)
            for i in range(abandoned)
        ]
        bad += [hostile(client, content=raw) for raw in MALFORMED]
        latencies, _ = await asyncio.gather(
            asyncio.gather(*(well_behaved(client, i) for i in range(good))), asyncio.gather(*bad)
        )
    return sorted(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--good", type=int, default=32, help="well-behaved requests per round")
    parser.add_argument("--big", type=int, default=100, help="200 KB messages per round")
    parser.add_argument("--abandoned", type=int, default=16, help="clients that leave per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny")
        process, base = start(model_dir)
        server = psutil.Process(process.pid)
        try:
            before = server.memory_info().rss
            print(
                f"RSS before: {before / 2**20:.0f} MiB (pid {process.pid}, {os.cpu_count()} CPUs)"
            )
            for r in range(1, args.rounds + 1):
                started = time.perf_counter()
                latencies = asyncio.run(
                    one_round(base, good=args.good, big=args.big, abandoned=args.abandoned)
                )
                p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
                print(
                    f"round {r}: {time.perf_counter() - started:.1f} s, well-behaved p50 "
                    f"{latencies[len(latencies) // 2]:.2f} s, p99 {p99:.2f} s, "
                    f"RSS {server.memory_info().rss / 2**20:.0f} MiB"
                )
            health = httpx.get(f"{base}/health", timeout=30).json()["status"]
            after = server.memory_info().rss
            print(
                f"RSS after: {after / 2**20:.0f} MiB ({(after - before) / 2**20:+.0f} MiB); "
                f"health: {health}"
            )
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
