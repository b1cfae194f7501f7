"""``humanlm simulate``: conversations against scripted servers, end reasons, resume, report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from humanlm.cli.main import _register, app
from humanlm.llm.limits import RetryPolicy
from humanlm.simulate.assistant import Assistant
from humanlm.simulate.conversation import run_simulate
from humanlm.simulate.scenarios import Scenario, load_scenarios, scenarios_from_prepared
from humanlm.simulate.user import UserSimulator
from humanlm.states import END_SIGNAL
from humanlm.testing import ScriptedServer
from humanlm.testing.server import Reply

from .conftest import MIXED_DEMO

FAST = RetryPolicy(max_retries=2, timeout_s=10.0, backoff_s=0.01, backoff_max_s=0.02)


def _user_reply(request) -> str:
    """A chat model playing the user: behaviour chosen by a word in the persona."""
    system = request.messages[0]["content"]
    seen = sum(1 for m in request.messages if m["role"] == "user")  # assistant turns it saw
    if "SILENT" in system:
        return ""
    if "QUITTER" in system and seen >= 2:
        return f"<response>{END_SIGNAL}</response>"
    return f"<response>question {seen}</response>"


def _assistant_reply(request) -> Reply | str:
    if any("BREAK" in m["content"] for m in request.messages if m["role"] == "system"):
        return Reply(status=503)
    return f"answer to: {request.messages[-1]['content']}"


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedServer, ScriptedServer]]:
    with (
        ScriptedServer(reply_fn=_user_reply, model="player") as user_srv,
        ScriptedServer(reply_fn=_assistant_reply, model="bot") as bot_srv,
    ):
        yield user_srv, bot_srv


def _scenarios_file(tmp_path: Path) -> Path:
    rows = [
        {"id": "quit", "persona": "QUITTER who asks two things", "goal": "learn two facts"},
        {"id": "chatty", "persona": "Talks forever."},
        {"id": "silent", "persona": "SILENT type"},
        {
            "id": "opened",
            "persona": {"demographics": {"age group": "20s"}, "interests": ["chess"]},
            "messages": [
                {"role": "user", "content": "hi, teach me chess"},
                {"role": "assistant", "content": "Sure, what level are you?"},
            ],
        },
    ]
    path = tmp_path / "scenarios.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(scenarios, user_srv, bot_srv, out: Path, *, system: str | None = None, turns: int = 3):
    user = UserSimulator.from_spec(f"openai:player@{user_srv.base_url}")
    assistant = Assistant("bot", base_url=bot_srv.base_url, api_key="x", system=system, retry=FAST)
    return run_simulate(
        scenarios=scenarios,
        user=user,
        assistant=assistant,
        out_dir=out,
        max_turns=turns,
        concurrency=4,
    )


def _records(out: Path) -> dict[str, dict]:
    lines = (out / "conversations.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def test_scenarios_from_a_file_end_for_their_reasons(servers, tmp_path: Path) -> None:
    user_srv, bot_srv = servers
    summary = _run(load_scenarios(_scenarios_file(tmp_path)), user_srv, bot_srv, tmp_path / "o")
    records = _records(tmp_path / "o")
    assert {k: r["end_reason"] for k, r in records.items()} == {
        "quit": "user_ended",
        "chatty": "max_turns",
        "silent": "empty_user_turn",
        "opened": "max_turns",
    }
    assert summary.written == 4 and summary.end_reasons["max_turns"] == 2
    for r in records.values():
        roles = [m["role"] for m in r["messages"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2)  # starts with user, alternates
        assert all(m["content"].strip() for m in r["messages"])  # nothing empty was sent
        assert END_SIGNAL not in json.dumps(r["messages"])
    assert records["quit"]["turns"] == 2 and records["chatty"]["turns"] == 3
    assert records["silent"]["messages"] == [] and records["silent"]["usage"]["user_calls"] == 3
    opened = records["opened"]["messages"]
    assert opened[0]["content"] == "hi, teach me chess" and records["opened"]["turns"] == 3
    assert "learn two facts" in user_srv.chat_requests[0].messages[0]["content"] or any(
        "learn two facts" in r.messages[0]["content"] for r in user_srv.chat_requests
    )
    report = (tmp_path / "o" / "report.md").read_text()
    assert "| user_ended | 1 |" in report and "## Sample transcripts" in report
    assert "<table>" in (tmp_path / "o" / "report.html").read_text()


def test_rerun_keeps_finished_conversations_and_sends_nothing(servers, tmp_path: Path) -> None:
    user_srv, bot_srv = servers
    scenarios = load_scenarios(_scenarios_file(tmp_path))
    out = tmp_path / "o"
    _run(scenarios[:2], user_srv, bot_srv, out)
    before = (out / "conversations.jsonl").read_text()
    sent = len(user_srv.requests) + len(bot_srv.requests)
    again = _run(scenarios[:2], user_srv, bot_srv, out)
    assert again.written == 0 and again.kept == 2
    assert len(user_srv.requests) + len(bot_srv.requests) == sent
    assert (out / "conversations.jsonl").read_text() == before
    # A line cut off by a crash is dropped, and only that conversation runs again.
    lines = before.splitlines()
    (out / "conversations.jsonl").write_text(lines[0] + "\n" + lines[1][:20])
    third = _run(scenarios[:2], user_srv, bot_srv, out)
    assert third.written == 1 and third.kept == 1
    assert len(_records(out)) == 2


def test_a_failing_assistant_is_retried_then_recorded(servers, tmp_path: Path) -> None:
    user_srv, bot_srv = servers
    scenario = Scenario("s", "Talks forever.")
    _run([scenario], user_srv, bot_srv, tmp_path / "o", system="BREAK")
    [record] = _records(tmp_path / "o").values()
    assert record["end_reason"] == "assistant_error" and record["error"] == "transport_error"
    assert record["usage"]["assistant_calls"] == 1 and len(bot_srv.chat_requests) == 3


def test_scenarios_from_prepared_wildchat_rows(servers, tmp_path: Path) -> None:
    from humanlm.data.prepare import run_prepare

    demo = MIXED_DEMO / "test.jsonl"  # reddit and wildchat rows
    run_prepare(source=demo, dataset="auto", out_dir=tmp_path / "data", split="test")
    scenarios = scenarios_from_prepared(tmp_path / "data/test.parquet", dataset="wildchat")
    assert scenarios and all(s.messages[0]["role"] == "user" for s in scenarios)
    user_srv, bot_srv = servers
    _run(scenarios[:3], user_srv, bot_srv, tmp_path / "o", turns=1)
    records = _records(tmp_path / "o")
    for s in scenarios[:3]:
        r = records[s.id]
        assert r["messages"][: len(s.messages)] == list(s.messages)  # kept verbatim, first
        assert r["end_reason"] == "max_turns" and r["turns"] == 1


def test_bad_scenario_lines_name_the_row(tmp_path: Path) -> None:
    from humanlm.errors import DataError

    path = tmp_path / "s.jsonl"
    path.write_text(
        '{"id": "a", "persona": "p"}\n{"id": "b", "persona": "p", "messages": [{"role": "assistant", "content": "hi"}]}\n'
    )
    with pytest.raises(DataError, match="row 1") as caught:
        load_scenarios(path)
    assert caught.value.field == "messages"


@pytest.mark.slow
def test_cli_simulates_with_a_local_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    _register()
    with ScriptedServer(reply_fn=_assistant_reply, model="bot") as bot_srv:
        scenarios = tmp_path / "s.jsonl"
        scenarios.write_text('{"id": "one", "persona": "A student."}\n')
        args = [
            "simulate",
            "--user",
            f"hf:{tiny_model_dir}",
            "--mode",
            "sft",
            "--assistant",
            f"openai:bot@{bot_srv.base_url}",
            "--scenarios",
            str(scenarios),
            "--max-turns",
            "2",
            "--max-new-tokens",
            "6",
            "--out",
            str(tmp_path / "o"),
        ]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [record] = _records(tmp_path / "o").values()
    assert record["end_reason"] in ("max_turns", "empty_user_turn")
    assert (tmp_path / "o" / "report.html").is_file()


@pytest.mark.slow
def test_a_model_trained_on_end_examples_ends_the_conversation(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from humanlm.data.prepare import load_prepared, run_prepare
    from humanlm.generate import GenerationSettings
    from humanlm.train.data import build_sft_dataset
    from humanlm.train.warmup import run_warmup

    demo = MIXED_DEMO / "test.jsonl"  # reddit and wildchat rows
    run_prepare(source=demo, dataset="auto", out_dir=tmp_path / "data", split="test")
    rows = [
        r for r in load_prepared(tmp_path / "data/test.parquet") if r["data_source"] == "wildchat"
    ]
    # One conversation with an end-only target, memorised: enough to show the signal comes out.
    ends = [{**rows[0], "ground_truth": END_SIGNAL}]
    dataset = build_sft_dataset(ends, state_set="r", thinking=False)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    run_warmup(
        model=model,
        tokenizer=tokenizer,
        dataset=dataset,
        steps=60,
        learning_rate=1e-2,
        batch_size=1,
        seed=0,
    )
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")

    settings = GenerationSettings(temperature=0.0, max_new_tokens=24)
    user = UserSimulator.from_spec(f"hf:{tmp_path / 'model'}", mode="grpo", settings=settings)
    scenarios = scenarios_from_prepared(tmp_path / "data/test.parquet", dataset="wildchat")
    with ScriptedServer(reply_fn=_assistant_reply, model="bot") as bot_srv:
        assistant = Assistant("bot", base_url=bot_srv.base_url, api_key="x", retry=FAST)
        summary = run_simulate(
            scenarios=[s for s in scenarios if s.id == rows[0]["example_id"]],
            user=user,
            assistant=assistant,
            out_dir=tmp_path / "o",
            max_turns=3,
        )
    assert summary.end_reasons == {"user_ended": 1}
    assert all(r["turns"] == 0 for r in _records(tmp_path / "o").values())


def test_cli_needs_exactly_one_source(tmp_path: Path) -> None:
    from humanlm.errors import ConfigError

    _register()
    args = ["simulate", "--user", "hf:x", "--assistant", "openai:y@http://127.0.0.1:9/v1"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert isinstance(result.exception, ConfigError)
    assert "exactly one of --scenarios" in str(result.exception)
