"""Shared fixtures: a scripted judge server on 127.0.0.1 and judges with short, test-sized limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from humanlm.judge import JudgeConfig, build_judge
from humanlm.judge.client import LLMJudge
from humanlm.testing import ScriptedServer

T = TypeVar("T")

CONTEXT = [
    {"name": "OP", "content": "AITA for keeping the deposit my roommate never paid back?"},
    {"name": "commenter_1", "content": "Depends on whether you agreed to it in writing."},
]
TRUTH = "NTA. She owes you that money and you gave her months to pay it back."


def run(coro: Awaitable[T], timeout: float = 10.0) -> T:
    """Run a coroutine with a hard time limit, so no test can hang."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def make_judge(server: ScriptedServer) -> Callable[..., LLMJudge]:
    """Build an ``openai:`` judge on the scripted server with short timeouts and backoffs."""

    def make(**overrides: Any) -> LLMJudge:
        settings: dict[str, Any] = {
            "timeout_s": 3.0,
            "request_timeout_s": 1.0,
            "max_retries": 3,
            "backoff_s": 0.01,
            "backoff_max_s": 0.05,
            "seed": 0,
        }
        settings.update(overrides)
        seed = settings.pop("seed")
        spec = f"openai:judge-model@{server.base_url}"
        judge = build_judge(JudgeConfig(spec, **settings), seed=seed)
        assert isinstance(judge, LLMJudge)
        return judge

    return make
