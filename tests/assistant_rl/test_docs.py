"""docs/assistant_rl.md's worked example runs as written, with its settings pointed at the tiny
model (the assistant) and scripted servers (the simulated user and the judge)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from humanlm.testing import ScriptedServer
from tests.assistant_rl.test_grpo import grade

DOC = Path(__file__).parents[2] / "docs" / "assistant_rl.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
def test_the_worked_example_runs(
    tiny_model_dir, assistant_tokenizer, user_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    settings, train, report = blocks("python")
    [scenario] = blocks("json")
    assistant = tmp_path / "assistant"
    shutil.copytree(tiny_model_dir, assistant)
    assistant_tokenizer.save_pretrained(assistant)  # the tiny model with an assistant template
    (tmp_path / "scenarios.jsonl").write_text(scenario, encoding="utf-8")
    with ScriptedServer(reply_fn=grade) as judge_server:
        namespace: dict = {}
        exec(compile(settings, "settings", "exec"), {})  # the block runs; its values are ours
        namespace.update(
            ASSISTANT=str(assistant),
            USER=f"openai:scripted@{user_server.base_url}",
            JUDGE=f"openai:judge@{judge_server.base_url}",
            SCENARIOS=str(tmp_path / "scenarios.jsonl"),
            OUT=str(tmp_path / "run"),
            STEPS=1,
            BATCH=2,
            GROUP=2,
            MAX_TURNS=2,
            TURN_TOKENS=16,
            ON_CPU=True,
        )
        exec(compile(train, "docs/assistant_rl.md training", "exec"), namespace)
        exec(compile(report, "docs/assistant_rl.md report", "exec"), namespace)
        assert len(judge_server.chat_requests) == 2
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    logged = json.loads(printed.replace("'", '"'))
    assert logged["episodes/max_turns"] == 1.0  # the scripted user never ends
    assert logged["rewards/judge_reward/mean"] == pytest.approx(0.2)
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
