"""One real ``humanlm serve`` process on the tiny model, shared by the module's tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SERVE_KEY = "test-serve-key"


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    process: subprocess.Popen
    api_key: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    model_dir: Path | str,
    *extra: str,
    env: dict[str, str] | None = None,
    kind: str = "hf",
    wait_s: float = 120.0,
    log: Path | None = None,
) -> RunningServer:
    """Start ``humanlm serve`` on ``KIND:MODEL_DIR`` in a subprocess and wait (at most
    ``wait_s``) until /health answers. ``log``: a file for its stderr (the log lines)."""
    port = _free_port()
    src = Path(__file__).resolve().parents[2] / "src"
    full_env = {**os.environ, "PYTHONPATH": str(src), "SERVE_KEY": SERVE_KEY, **(env or {})}
    command = [sys.executable, "-m", "humanlm.cli.main", "serve", "--model", f"{kind}:{model_dir}"]
    command += ["--port", str(port), "--api-key-env", "SERVE_KEY", *extra]
    stderr = log.open("w", encoding="utf-8") if log is not None else subprocess.PIPE
    process = subprocess.Popen(
        command, env=full_env, stdout=subprocess.DEVNULL, stderr=stderr, text=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s  # imports and model loading on a busy machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log.read_text(encoding="utf-8") if log is not None else process.stderr.read()
            raise RuntimeError(f"humanlm serve exited: {said[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                return RunningServer(f"{base}/v1", process, SERVE_KEY)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("humanlm serve did not become healthy in time")


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=20)


@pytest.fixture(scope="module")
def served(tiny_model_dir: Path) -> Iterator[RunningServer]:
    """``humanlm serve`` on the tiny model (mode grpo: tagged responses, no thinking)."""
    server = start_server(
        tiny_model_dir, "--mode", "grpo", "--served-name", "tiny", "--context-length", "2048"
    )
    yield server
    stop_server(server)
