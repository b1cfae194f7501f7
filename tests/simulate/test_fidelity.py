"""The fidelity check of simulated user turns: what fails it, how often a turn is drawn again,
and the counts in ``conversations.jsonl`` and the report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from humanlm.errors import ConfigError
from humanlm.llm.limits import RetryPolicy
from humanlm.simulate.assistant import Assistant
from humanlm.simulate.conversation import run_simulate
from humanlm.simulate.fidelity import check_user_turn
from humanlm.simulate.scenarios import Scenario
from humanlm.simulate.user import UserSimulator
from humanlm.testing import ScriptedServer

ANSWER = "Paris is the capital of France and has been for a very long time, since the Middle Ages."
HISTORY = [
    {"role": "user", "content": "what is the capital of france"},
    {"role": "assistant", "content": ANSWER},
]

CHECK_CASES = [
    ("ok thanks, and what about spain?", None),  # a user's turn
    ("   \n", "empty"),  # whitespace only
    ("I'd be happy to help you plan the trip!", "assistant_voice"),  # an assistant's phrase
    ("I\u2019d be happy to help you plan the trip!", "assistant_voice"),  # curly apostrophe
    ("As an AI, I cannot book flights.", "assistant_voice"),  # names itself an AI
    ("wait so paris is the capital of france and has been for ages?", "copies_context"),  # echo
    ("paris is the capital of france? cool", None),  # a short quote is what people write
    ("what is the capital of france", None),  # repeats own earlier turn, but short
]


@pytest.mark.parametrize(("text", "expected"), CHECK_CASES)
def test_check_user_turn(text: str, expected: str | None) -> None:
    assert check_user_turn(text, HISTORY) == expected


FAST = RetryPolicy(max_retries=1, timeout_s=10.0, backoff_s=0.01, backoff_max_s=0.02)


def _user_server() -> ScriptedServer:
    """A chat model playing the user; the persona's first word picks how it fails."""
    draws: Counter[tuple[str, int]] = Counter()

    def reply(request) -> str:
        system = request.messages[0]["content"]
        seen = [m["content"] for m in request.messages[1:] if m["role"] == "user"]  # the bot's
        draws[(system, len(request.messages))] += 1
        first_draw = draws[(system, len(request.messages))] == 1
        if "HELPER" in system and first_draw:
            return "<response>I'd be happy to help you with that!</response>"
        if "FLAKY" in system and first_draw:
            return "<response></response>"
        if "ECHO" in system and seen:
            return f"<response>{seen[-1]}</response>"
        return f"<response>and then what, part {len(seen)}?</response>"

    return ScriptedServer(reply_fn=reply, model="player")


def test_failing_user_turns_are_drawn_again_and_counted(tmp_path: Path) -> None:
    scenarios = [
        Scenario("helper", "HELPER slips into the assistant's role"),
        Scenario("flaky", "FLAKY sometimes sends nothing"),
        Scenario("echo", "ECHO repeats what it is told"),
        Scenario("fine", "Asks short questions."),
    ]
    with (
        _user_server() as user_srv,
        ScriptedServer(reply_fn=lambda request: ANSWER, model="bot") as bot_srv,
    ):
        run_simulate(
            scenarios=scenarios,
            user=UserSimulator.from_spec(f"openai:player@{user_srv.base_url}"),
            assistant=Assistant("bot", base_url=bot_srv.base_url, api_key="x", retry=FAST),
            out_dir=tmp_path / "o",
            max_turns=2,
            concurrency=1,
            fidelity_retries=1,
        )
    lines = (tmp_path / "o" / "conversations.jsonl").read_text().splitlines()
    records = {r["id"]: r for r in map(json.loads, lines)}
    fidelity = {k: r["fidelity"] for k, r in records.items()}
    assert fidelity == {
        "helper": {"resampled": {"assistant_voice": 2}, "kept": {}},  # redrawn once per turn
        "flaky": {"resampled": {"empty": 2}, "kept": {}},
        # The opening turn has nothing to copy; the second is redrawn once, then kept.
        "echo": {"resampled": {"copies_context": 1}, "kept": {"copies_context": 1}},
        "fine": {"resampled": {}, "kept": {}},
    }
    assert {k: r["usage"]["user_calls"] for k, r in records.items()} == {
        "helper": 4, "flaky": 4, "echo": 3, "fine": 2,
    }  # fmt: skip
    assert all(r["end_reason"] == "max_turns" and r["turns"] == 2 for r in records.values())
    sent = [m["content"] for r in records.values() for m in r["messages"] if m["role"] == "user"]
    assert not any("happy to help" in text or not text.strip() for text in sent)
    report = (tmp_path / "o" / "report.md").read_text()
    assert "3 of 4 checked conversation(s) had a user turn" in report
    assert "| assistant_voice | 2 | 0 |" in report and "| empty | 2 | 0 |" in report
    assert "| copies_context | 1 | 1 |" in report
    page = (tmp_path / "o" / "report.html").read_text()
    assert "<h2>User fidelity</h2>" in page
    assert "<td>copies_context</td><td>1</td><td>1</td>" in page


def test_fidelity_retries_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fidelity_retries must be >= 0"):
        run_simulate(
            scenarios=[],
            user=None,  # type: ignore[arg-type]  # refused before either side is used
            assistant=None,  # type: ignore[arg-type]
            out_dir=tmp_path / "o",
            fidelity_retries=-1,
        )
