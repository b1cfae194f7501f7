"""Shared fixtures: scripted simulator and judge servers on 127.0.0.1 and a config builder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from humanlm.eval import EvalConfig
from humanlm.eval.config import read_saved_mode
from humanlm.testing import RecordedRequest, Reply, ScriptedServer
from humanlm.testing.judge_replies import judge_reply_fn

# The first bundled demo set (a forum and a chat with an assistant, 12 users): evaluation tests
# need both platforms; the demo itself runs on the synthetic demo world.
MIXED_DEMO = Path(__file__).parents[1] / "fixtures" / "mixed_demo"
# A simulator reply that breaks the response format is produced for contexts with this text.
NO_TAGS_MARKER = "enzyme"


def echo_reply(request: RecordedRequest) -> Reply:
    """A deterministic simulator: the last context message's tail, in the response format."""
    last = str(request.messages[-1].get("content") or "")
    if NO_TAGS_MARKER in last:
        return Reply(content="I forgot the tags")
    return Reply(content=f"plan</think>\n\n<response>{' '.join(last.split()[-12:])}</response>")


@pytest.fixture(scope="session")
def demo_examples(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The mixed fixture's test split, prepared (12 examples, reddit and wildchat)."""
    from humanlm.data.resolve import resolve_split

    return resolve_split(
        str(MIXED_DEMO), dataset="auto", split="test", work_dir=tmp_path_factory.mktemp("demo")
    )


@pytest.fixture
def sim_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(reply_fn=echo_reply) as server:
        yield server


@pytest.fixture
def judge_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(reply_fn=judge_reply_fn()) as server:
        yield server


@pytest.fixture
def make_cfg(sim_server, judge_server, tmp_path) -> Callable[..., EvalConfig]:
    """An ``EvalConfig`` on the demo split against the scripted servers (no embedding)."""

    def make(**overrides: Any) -> EvalConfig:
        settings: dict[str, Any] = {
            "model": f"openai:sim@{sim_server.base_url}",
            "data": str(MIXED_DEMO),
            "judge": f"openai:judge@{judge_server.base_url}",
            "out": str(tmp_path / "run"),
            "embedding": False,
            "progress": False,
        }
        simulator = {"timeout_s": 3.0, "max_retries": 1, **overrides.pop("simulator", {})}
        settings.update(overrides, simulator=simulator)
        return read_saved_mode(EvalConfig(**settings))  # as loading a config does

    return make
