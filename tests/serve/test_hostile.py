"""``humanlm serve`` against clients that are hostile, huge, gone or broken (issue 24), through
real HTTP: the body limit, reading off the event loop, cancelled work of clients that left,
seeds in one batch, backend faults, a busy port, and the access log."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from humanlm.generate import BatchingGenerator, HFGenerator
from humanlm.serve.app import build_app
from humanlm.simulate.user import UserSimulator
from humanlm.testing import ScriptedServer
from humanlm.testing.server import Reply
from tests.serve.conftest import RunningServer, _free_port, start_server, stop_server

PERSONA = "A retired teacher who writes short, polite messages."


def _chat(text: str, **fields: object) -> dict:
    messages = [{"role": "system", "content": PERSONA}, {"role": "assistant", "content": text}]
    return {"model": "tiny", "messages": messages, **fields}


@pytest.fixture(scope="module")
def logged(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """A server with room for long replies (the model's whole context), its log in a file."""
    log = tmp_path_factory.mktemp("serve_log") / "serve.log"
    server = start_server(tiny_model_dir, "--mode", "grpo", "--served-name", "tiny", log=log)
    yield server, log
    stop_server(server)


def _headers(server: RunningServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}


def _root(server: RunningServer) -> str:
    return server.base_url.removesuffix("/v1")


def test_a_body_over_the_limit_gets_413(logged: tuple) -> None:
    server, _ = logged
    url = f"{server.base_url}/chat/completions"
    nine_mb = b"x" * (9 << 20)  # the default limit is 8 MiB
    told = httpx.post(url, content=nine_mb, headers=_headers(server), timeout=60)
    assert told.status_code == 413
    assert told.json()["error"]["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        for _ in range(9):
            yield b"x" * (1 << 20)

    streamed = httpx.post(url, content=chunks(), headers=_headers(server), timeout=60)
    assert streamed.status_code == 413
    assert streamed.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{_root(server)}/health").json()["status"] == "ok"


def test_health_answers_while_a_huge_prompt_is_read(logged: tuple) -> None:
    server, _ = logged
    body = _chat("Tell me about your garden. " * 260_000)  # 7 MB: seconds of tokenising
    answer: dict[str, httpx.Response] = {}

    def send() -> None:
        answer["huge"] = httpx.post(
            f"{server.base_url}/chat/completions", json=body, headers=_headers(server), timeout=300
        )

    sender = threading.Thread(target=send)
    sender.start()
    healthy_meanwhile = 0
    while sender.is_alive():
        health = httpx.get(f"{_root(server)}/health", timeout=300)
        if sender.is_alive():  # answered while the huge request was still being read
            healthy_meanwhile += health.status_code == 200
    sender.join()
    assert answer["huge"].json()["error"]["code"] == "context_length_exceeded"
    assert healthy_meanwhile >= 2


def test_clients_that_leave_do_not_hold_up_the_next_request(logged: tuple) -> None:
    server, log = logged
    url = f"{server.base_url}/chat/completions"

    async def leave(i: int) -> None:
        # 30,000 tokens each: hours of generation for 16 rows on a CPU, unless it is cancelled.
        async with httpx.AsyncClient(timeout=2.0) as client:
            with pytest.raises(httpx.TimeoutException):
                await client.post(
                    url, json=_chat(f"Question {i}?", max_tokens=30_000), headers=_headers(server)
                )

    async def go() -> float:
        await asyncio.gather(*(leave(i) for i in range(16)))
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=600) as client:
            small = await client.post(
                url, json=_chat("Hi!", max_tokens=4), headers=_headers(server)
            )
        assert small.status_code == 200 and small.json()["choices"][0]["message"]
        return time.monotonic() - started

    # Waiting for the abandoned work would take hours; a minute is plenty on a busy machine.
    assert asyncio.run(go()) < 120
    deadline = time.monotonic() + 30
    while log.read_text(encoding="utf-8").count('/v1/chat/completions HTTP/1.1" 499') < 16:
        assert time.monotonic() < deadline, "the abandoned requests were not logged as 499"
        time.sleep(0.5)


def test_every_request_is_logged(logged: tuple) -> None:
    server, log = logged
    httpx.get(f"{_root(server)}/health")
    httpx.post(f"{server.base_url}/chat/completions", content=b"{", headers=_headers(server))
    httpx.get(f"{server.base_url}/models", headers={"Authorization": "Bearer wrong"})
    line = r'INFO humanlm\.serve\.access: 127\.0\.0\.1:\d+ - "{} HTTP/1\.1" {} \d+\.\d ms'
    deadline = time.monotonic() + 30
    wanted = [("GET /health", 200), ("POST /v1/chat/completions", 400), ("GET /v1/models", 401)]
    while True:
        text = log.read_text(encoding="utf-8")
        missing = [w for w in wanted if not re.search(line.format(w[0], w[1]), text)]
        if not missing:
            break
        assert time.monotonic() < deadline, f"no access log line for {missing}"
        time.sleep(0.5)
    assert server.api_key not in text and "wrong" not in text


def test_a_proxied_backend_answering_html_gets_502(tmp_path: Path) -> None:
    html = Reply(body="<html><body><h1>502 Bad Gateway</h1></body></html>")
    with ScriptedServer(reply_fn=lambda request: html) as backend:
        server = start_server(f"scripted@{backend.base_url}", "--mode", "grpo", kind="openai")
        try:
            for route, body in [
                ("chat/completions", _chat("Hi!", max_tokens=4)),
                ("completions", {"model": "tiny", "prompt": "Hello", "max_tokens": 4}),
            ]:
                answer = httpx.post(
                    f"{server.base_url}/{route}", json=body, headers=_headers(server), timeout=300
                )
                assert answer.status_code == 502, answer.text
                assert answer.json()["error"]["code"] == "backend_error"
                assert answer.json()["error"]["type"] == "server_error"
        finally:
            stop_server(server)


def test_a_busy_port_stops_serve_before_the_model_loads(tmp_path: Path) -> None:
    empty = tmp_path / "model"  # nothing to load: the port is checked first
    empty.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "humanlm.cli.main", "serve", "--model", f"hf:{empty}"]
            + ["--port", str(port), "--mode", "grpo"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done.stderr
    assert f"127.0.0.1:{port} is in use" in done.stderr and "Traceback" not in done.stderr


def test_requests_with_different_seeds_share_one_batch(tiny_model_dir: Path) -> None:
    engine = BatchingGenerator(HFGenerator(str(tiny_model_dir)), max_batch=8, window_s=1.0)
    app = build_app(UserSimulator(engine, mode="grpo"), model_name="tiny")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    async def ask(seeds: list[int], n: int = 1) -> list[list[str]]:
        async with httpx.AsyncClient(timeout=600) as client:
            answers = await asyncio.gather(
                *(
                    client.post(url, json=_chat("Hi!", max_tokens=8, temperature=1.0, seed=s, n=n))
                    for s in seeds
                )
            )
        return [[c["humanlm"]["raw"] for c in a.json()["choices"]] for a in answers]

    try:
        together = asyncio.run(ask([1, 2, 3, 4]))
        assert engine.batch_sizes == [4]  # one forward pass for four seeds
        alone = [asyncio.run(ask([s]))[0] for s in (1, 2, 3, 4)]
        assert alone == together  # each reply is its seed's, whatever its company
        assert len(set(map(tuple, together))) > 1
        [three] = asyncio.run(ask([5], n=3))
        assert len(set(three)) == 3  # the n choices of one seed differ
    finally:
        server.should_exit = True
