"""LLM personas against the scripted server on 127.0.0.1: schema, retries, failures, resume."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import pyarrow.parquet as pq
import pytest

from humanlm.data.persona import count_persona_items
from humanlm.data.prepare import load_prepared, run_prepare
from humanlm.data.validate import validate_source
from humanlm.enrich.personas import parse_persona_reply, run_personas
from humanlm.errors import ConfigError, JudgeUnavailableError
from humanlm.ingest.dataset import run_build
from humanlm.ingest.output import HELD_FILE, PERSONA_LOG
from humanlm.llm.limits import RetryPolicy
from humanlm.testing import Reply, ScriptedServer, faults
from tests.ingest.test_dataset import USERS, forum_items, rows_of, write_items

FAST = RetryPolicy(
    max_retries=3, timeout_s=5.0, request_timeout_s=2.0, backoff_s=0.01, backoff_max_s=0.02
)


def persona_json(tag: str = "x", *, items: int = 8, stats: int = 5) -> str:
    return json.dumps(
        {
            "demographics": {
                "age group": "NA",
                "gender": "NA",
                "location": "Lisbon",
                "occupation": "NA",
                "nationality": "NA",
                "other": "NA",
            },
            "interests": [f"{tag} interest {n}" for n in range(items)],
            "values": [f"{tag} value {n}" for n in range(items)],
            "communication": [f"{tag} style {n}" for n in range(items)],
            "statistics": [f"{tag} habit {n}" for n in range(stats)],
        }
    )


def with_item(name: str, index: int, text: str) -> str:
    data = json.loads(persona_json())
    data[name][index] = text
    return json.dumps(data)


def with_all_items(text: str, count: int) -> str:
    data = json.loads(persona_json())
    for name in ("interests", "values", "communication", "statistics"):
        data[name] = [f"{text} {n}" for n in range(count if name != "statistics" else 10)]
    return json.dumps(data)


def with_demographic(key: str, value: object) -> str:
    data = json.loads(persona_json())
    data["demographics"][key] = value
    return json.dumps(data)  # NaN is written as NaN, which JSON readers accept


def user_of(request) -> str:
    """The target user of a persona request (forum_items texts end with 'by <user>.')."""
    (user,) = set(
        re.findall(r"^Reply \d+ in thread \d+ by (\w+)\.$", request.messages[0]["content"], re.M)
    )
    return user


@pytest.fixture
def built(tmp_path):
    source = write_items(tmp_path / "raw.jsonl", forum_items(threads=20))
    run_build(inputs=[source], out_dir=tmp_path / "out", personas=False, ratios=(0.8, 0.1, 0.1))
    return tmp_path / "out"


def spec(server: ScriptedServer) -> str:
    return f"openai:persona-model@{server.base_url}"


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (persona_json(), "ok"),  # valid
        ("```json\n" + persona_json() + "\n```", "ok"),  # fenced
        ("Sure! " + persona_json() + " Hope it helps.", "ok"),  # chatter around the object
        ("not json at all", "no JSON object"),  # no object
        ('{"demographics": {}, "interests": [', "invalid JSON"),  # truncated
        ('{"demographics": {}, "interests": ["a",]}', "invalid JSON"),  # broken syntax
        (persona_json(items=7), "interests has 7 items; it needs 8 to 12"),  # too few
        (persona_json(stats=11), "statistics has 11 items; it needs 5 to 10"),  # too many
        ('{"interests": []}', "demographics must be an object"),  # missing block
        (json.dumps({**json.loads(persona_json()), "values": "kind"}), "values must be a list"),
        (None, "no JSON object"),  # null content
        (persona_json()[:-1] + ', "values": ["kind"]}', "the JSON names the key 'values' twice"),
        # issue 24: sizes and value types
        (with_item("interests", 2, "x" * 401), "interests[2]: the item has 401 characters"),
        (with_item("values", 0, "x" * 400), "ok"),  # at the limit
        (with_all_items("y" * 390, 12), "the persona: the persona has 18,"),  # too big in all
        (with_demographic("age group", float("nan")), "demographics.age group must be text"),
        (with_demographic("age group", 34), "demographics.age group must be text"),
        (with_demographic("gender", "g" * 401), "demographics.gender: the value has 401"),
        (with_demographic("gender", None), "ok"),  # null: not known
    ],
)
def test_parse_persona_reply(reply, problem):
    persona, reason = parse_persona_reply(reply)
    assert reason.startswith(problem)
    assert (persona is not None) == (problem == "ok")


def test_missing_demographics_become_na():
    data = json.loads(persona_json())
    data["demographics"] = {"gender": "female"}
    persona, _ = parse_persona_reply(json.dumps(data))
    assert persona["demographics"] == {
        "age group": "NA",
        "gender": "female",
        "location": "NA",
        "occupation": "NA",
        "nationality": "NA",
        "other": "NA",
    }


def test_build_with_llm_personas_then_prepare(tmp_path):
    source = write_items(tmp_path / "raw.jsonl", forum_items(threads=20))
    with ScriptedServer(reply_fn=lambda r: persona_json(user_of(r))) as server:
        summary = run_build(
            inputs=[source], out_dir=tmp_path / "out", llm=spec(server), k=2, concurrency=3
        )
        prompts = {user_of(r): r.messages[0]["content"] for r in server.chat_requests}
    rows = rows_of(tmp_path / "out")
    assert len(prompts) == len(USERS) == summary.personas.users
    for split in rows.values():
        for row in split:
            persona = json.loads(row["persona"])
            assert persona["interests"][0] == f"{row['user_id']} interest 0"
            assert count_persona_items(row["persona"]) >= 10
    # Each user's earliest two training replies, and nothing later.
    ann = sorted((r["timestamp"], r["completion"]) for r in rows["train"] if r["user_id"] == "ann")
    assert all(text in prompts["ann"] for _, text in ann[:2]) and ann[2][1] not in prompts["ann"]
    log = (tmp_path / "out" / PERSONA_LOG).read_text().splitlines()
    assert sorted(json.loads(line)["user_id"] for line in log) == sorted(USERS)
    assert "Summarised by `openai:persona-model`" in (tmp_path / "out" / "README.md").read_text()
    run_prepare(source=tmp_path / "out", dataset="generic", out_dir=tmp_path / "prepared")
    example = load_prepared(tmp_path / "prepared" / "train.parquet")[0]
    assert "Interests:\n  - " in example["persona"] and "location: Lisbon" in example["persona"]


def test_invalid_json_is_sent_back_and_retried(built):
    seen: dict[str, int] = {}

    def reply(request):
        user = user_of(request)
        seen[user] = seen.get(user, 0) + 1
        return "{broken" if seen[user] == 1 else persona_json(user)

    with ScriptedServer(reply_fn=reply) as server:
        summary = run_personas(data_dir=built, llm=spec(server), retry=FAST)
        retries = [r for r in server.chat_requests if len(r.messages) == 3]
    assert summary.users == len(USERS) and not summary.failed
    assert len(retries) == len(USERS)
    assert retries[0].messages[1] == {"role": "assistant", "content": "{broken"}
    assert "cannot be used: no JSON object" in retries[0].messages[2]["content"]
    assert summary.ledger["retries"] == {"invalid_reply": len(USERS)}


def test_a_reply_that_repeats_a_key_is_sent_back_and_retried(built):
    # issue 24: a repeated key was read last-key-wins; now the model is told and asked again.
    seen: dict[str, int] = {}

    def reply(request):
        user = user_of(request)
        seen[user] = seen.get(user, 0) + 1
        repeated = persona_json(user)[:-1] + ', "interests": ["only this"]}'
        return repeated if seen[user] == 1 else persona_json(user)

    with ScriptedServer(reply_fn=reply) as server:
        summary = run_personas(data_dir=built, llm=spec(server), retry=FAST)
        retries = [r for r in server.chat_requests if len(r.messages) == 3]
    assert summary.users == len(USERS) and not summary.failed
    assert len(retries) == len(USERS)
    assert "the JSON names the key 'interests' twice" in retries[0].messages[2]["content"]
    interests = {json.loads(r["persona"])["interests"][0] for r in rows_of(built)["train"]}
    assert "only this" not in interests


def test_transport_faults_use_the_retry_policy(built):
    with ScriptedServer(reply_fn=lambda r: persona_json(user_of(r))) as server:
        server.enqueue(faults.rate_limited(0.01), faults.server_error(503), faults.disconnect())
        summary = run_personas(data_dir=built, llm=spec(server), retry=FAST, concurrency=1)
    assert summary.users == len(USERS) and not summary.failed
    assert summary.ledger["retries"] == {
        "connection_error": 1,
        "rate_limited": 1,
        "server_error": 1,
    }


def test_failed_users_are_reported_held_back_and_restored(built):
    total = sum(len(r) for r in rows_of(built).values())

    def reply(request):
        user = user_of(request)
        return "I cannot do that." if user == "eve" else persona_json(user)

    with ScriptedServer(reply_fn=reply) as server:
        summary = run_personas(data_dir=built, llm=spec(server), retry=FAST, content_retries=1)
        eve_calls = sum(user_of(r) == "eve" for r in server.chat_requests)
    assert eve_calls == 2  # the first answer and one content retry
    assert list(summary.failed) == ["eve"] and summary.failed["eve"].startswith("invalid_reply")
    assert "FAILED for 1 users (eve)" in summary.describe()
    rows = rows_of(built)
    assert all(r["user_id"] != "eve" for split in rows.values() for r in split)
    held = pq.read_table(built / HELD_FILE).to_pylist()
    assert (
        held
        and {r["user_id"] for r in held} == {"eve"}
        and {r["split"] for r in held} <= {"train", "val", "test"}
    )
    assert sum(len(r) for r in rows.values()) + len(held) == total
    card = (built / "README.md").read_text()
    assert "users whose persona failed: 1" in card and "`eve`" in card
    assert validate_source(built).ok
    run_prepare(source=built, dataset="generic", out_dir=built.parent / "prepared")

    with ScriptedServer(reply_fn=lambda r: persona_json(user_of(r))) as server:
        again = run_personas(data_dir=built, llm=spec(server), retry=FAST)
        assert {user_of(r) for r in server.chat_requests} == {"eve"}  # the others come from the log
    assert again.reused == len(USERS) - 1 and again.generated == 1 and not again.failed
    assert not (built / HELD_FILE).exists()
    assert sum(len(r) for r in rows_of(built).values()) == total


def test_an_interrupted_run_resumes_from_the_log(built):
    answered = threading.Event()
    state = {"calls": 0, "hang": True}

    def reply(request):
        state["calls"] += 1
        if state["hang"] and state["calls"] > 2:
            answered.set()
            return Reply(content=persona_json(user_of(request)), delay_s=60)  # never in time
        return persona_json(user_of(request))

    with ScriptedServer(reply_fn=reply) as server:
        code = (
            "from humanlm.enrich.personas import run_personas\n"
            f"run_personas(data_dir={str(built)!r}, llm={spec(server)!r}, concurrency=1)\n"
        )
        child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
        try:
            assert answered.wait(30), "the child never reached its third user"
            time.sleep(0.2)
        finally:
            child.kill()  # a crash: no cleanup runs in the child
            child.wait()
        log = built / PERSONA_LOG
        assert len(log.read_text().splitlines()) == 2
        with log.open("a") as fh:
            fh.write('{"user_id": "half-writ')  # a line cut short by the kill
        state["hang"], state["calls"] = False, 0
        summary = run_personas(data_dir=built, llm=spec(server), retry=FAST)
    assert summary.reused == 2 and summary.generated == len(USERS) - 2
    assert state["calls"] == len(USERS) - 2
    assert all(r["persona"] for split in rows_of(built).values() for r in split)


def test_concurrency_is_bounded(built):
    lock, active, peak = threading.Lock(), [0], [0]

    def reply(request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
        return persona_json(user_of(request))

    with ScriptedServer(reply_fn=reply) as server:
        run_personas(data_dir=built, llm=spec(server), concurrency=2, retry=FAST)
    assert peak[0] == 2


def test_refused_key_stops_the_run(built):
    with (
        ScriptedServer([Reply(status=401)] * 10) as server,
        pytest.raises(JudgeUnavailableError, match="401"),
    ):
        run_personas(data_dir=built, llm=spec(server), retry=FAST, concurrency=1)


def test_fixed_persona_and_argument_checks(built):
    summary = run_personas(data_dir=built, fixed="A regular of this forum.")
    assert summary.describe() == f"personas: one fixed text for all {len(USERS)} users"
    assert {r["persona"] for split in rows_of(built).values() for r in split} == {
        "A regular of this forum."
    }
    with pytest.raises(ConfigError, match="exactly one"):
        run_personas(data_dir=built)
    with pytest.raises(ConfigError, match="chat model"):
        run_personas(data_dir=built, llm="embedding:minilm")


def test_overlong_persona_items_are_retried_then_held_back_via_cli(built):
    # issue 24: a persona model answering 520 KB per item gave 18.7 MB personas.
    from typer.testing import CliRunner

    from humanlm.cli.data import app

    def reply(request):
        user = user_of(request)
        if user == "eve":
            return json.dumps({**json.loads(persona_json(user)), "values": ["v" * 520_000] * 8})
        return persona_json(user)

    with ScriptedServer(reply_fn=reply) as server:
        done = CliRunner().invoke(app, ["personas", "-i", str(built), "--llm", spec(server)])
        eve = [r for r in server.chat_requests if user_of(r) == "eve"]
    assert done.exit_code == 1, done.output
    assert "FAILED for 1 users (eve)" in done.output
    assert len(eve) == 3  # the first answer and two content retries, each told the limit
    told = eve[-1].messages[-1]["content"]
    assert "values[0]: the item has 520,000 characters; the limit is 400" in told
    held = pq.read_table(built / HELD_FILE).to_pylist()
    assert held and {r["user_id"] for r in held} == {"eve"}
    personas = [r["persona"] for split in rows_of(built).values() for r in split]
    assert personas and max(len(p) for p in personas) < 16_000
    assert validate_source(built).ok  # the rows that stayed are within the limits


def test_a_fixed_persona_over_the_limit_is_refused(built):
    with pytest.raises(ConfigError, match="the fixed persona has 16,001 characters"):
        run_personas(data_dir=built, fixed="x" * 16_001)


def test_a_huge_refused_reply_is_sent_back_cut_via_cli(built):
    # issue 24: a 520 KB reply was sent back whole with each re-ask (a 520 KB request).
    from typer.testing import CliRunner

    from humanlm.cli.data import app
    from humanlm.llm.client import ECHO_MAX_CHARS, PROBLEM_MAX_CHARS

    huge = json.dumps({**json.loads(persona_json("eve")), "values": ["v" * 65_000] * 8})
    seen: dict[str, int] = {}

    def reply(request):
        user = user_of(request)
        seen[user] = seen.get(user, 0) + 1
        return huge if user == "eve" and seen[user] == 1 else persona_json(user)

    with ScriptedServer(reply_fn=reply) as server:
        done = CliRunner().invoke(app, ["personas", "-i", str(built), "--llm", spec(server)])
        eve = [r for r in server.chat_requests if user_of(r) == "eve"]
    assert done.exit_code == 0, done.output
    assert len(huge) > 520_000 and len(eve) == 2  # refused once, then accepted
    echoed = eve[1].messages[1]["content"]
    assert echoed.startswith(huge[:ECHO_MAX_CHARS])
    assert echoed.endswith(f"[... {len(huge) - ECHO_MAX_CHARS:,} more characters cut]")
    told = eve[1].messages[2]["content"]
    assert "values[0]: the item has 65,000 characters; the limit is 400" in told
    assert len(told) < PROBLEM_MAX_CHARS + 400  # the problem, cut, in the retry prompt
    assert len(json.dumps(eve[1].body)) < len(eve[0].body["messages"][0]["content"]) + 6_000
    personas = {r["user_id"]: r["persona"] for r in rows_of(built)["train"]}
    assert personas["eve"] == persona_json("eve")
