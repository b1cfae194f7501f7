"""Benchmark ``humanlm serve`` on ``hf:``: replies per second for concurrent requests, with
dynamic batching vs. one request at a time.

A real uvicorn server on 127.0.0.1 serves the offline tiny model (built into a temporary folder);
N concurrent chat requests go through the unmodified ``openai`` SDK. The batched server merges
them into ``generate`` calls of up to 32 prompts; the baseline has ``max_batch=1``, so requests
are generated one after another. Target on this CPU: batched at least 4x one at a time.

On the tiny model the per-row work of sampling (a draw over the 152k-token vocabulary at every
step) is as large as its forward pass, so batching gains less with sampling than with greedy
decoding (``--temperature 0``); a real model's forward pass dominates instead.

Run:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/serve.py          # 32 requests, 32 new tokens
    .venv/bin/python benchmarks/serve.py --requests 16 --max-tokens 16 --temperature 0
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import openai
import uvicorn

from humanlm.generate import BatchingGenerator, HFGenerator
from humanlm.model.tiny import build_tiny_model
from humanlm.serve.app import build_app
from humanlm.simulate.user import UserSimulator

TARGET = 4.0
PERSONA = "A graduate student who writes short, direct messages."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_in_thread(engine: BatchingGenerator) -> tuple[uvicorn.Server, str]:
    app = build_app(UserSimulator(engine, mode="grpo"), model_name="tiny")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/v1"


async def fire(base_url: str, requests: int, max_tokens: int, temperature: float) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=600)
    start = time.perf_counter()
    await asyncio.gather(
        *(
            client.chat.completions.create(
                model="tiny",
                messages=[
                    {"role": "system", "content": PERSONA},
                    {
                        "role": "assistant",
                        "content": f"Hello! What can I help you with today? ({i})",
                    },
                ],
                max_tokens=max_tokens,
                temperature=temperature,
            )
            for i in range(requests)
        )
    )
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


def run(
    model_dir: Path, *, max_batch: int, requests: int, max_tokens: int, temperature: float
) -> tuple[float, list[int]]:
    engine = BatchingGenerator(HFGenerator(str(model_dir)), max_batch=max_batch)
    server, base_url = serve_in_thread(engine)
    try:
        asyncio.run(fire(base_url, 2, 4, temperature))  # warm-up: first-call costs left out
        engine.batch_sizes.clear()
        elapsed = asyncio.run(fire(base_url, requests, max_tokens, temperature))
    finally:
        server.should_exit = True
    return requests / elapsed, list(engine.batch_sizes)


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--temperature", type=float, default=0.4, help="0: greedy decoding")
    args = parser.parse_args()
    common = {
        "requests": args.requests,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
    }
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny")
        batched, sizes = run(model_dir, max_batch=32, **common)
        single, _ = run(model_dir, max_batch=1, **common)
    ratio = batched / single
    print(
        f"{args.requests} concurrent requests, {args.max_tokens} new tokens each, "
        f"temperature {args.temperature}, tiny model, CPU"
    )
    print(f"  batched (max_batch=32): {batched:.2f} replies/s, generate calls of {sizes}")
    print(f"  one at a time:          {single:.2f} replies/s")
    print(f"  speed-up: {ratio:.1f}x (target: at least {TARGET:.0f}x)")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
