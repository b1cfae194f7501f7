"""Thinking traces against the scripted server on 127.0.0.1: checks, retries, failures, resume."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from humanlm.cli.data import app
from humanlm.data.prepare import PREPARED_SCHEMA, build_example_id, load_prepared
from humanlm.enrich.traces import (
    TRACE_LOG,
    TRACE_SUMMARY,
    build_trace_prompt,
    parse_trace_reply,
    run_traces,
    trace_prompt_version,
)
from humanlm.errors import ConfigError, DataError, JudgeUnavailableError
from humanlm.llm.limits import RetryPolicy
from humanlm.testing import Reply, ScriptedServer
from humanlm.train.data import build_sft_dataset

FAST = RetryPolicy(
    max_retries=2, timeout_s=5.0, request_timeout_s=2.0, backoff_s=0.01, backoff_max_s=0.02
)
REPLY_MARK = "## The reply they wrote\n\n"
LONG_REPLY = (
    "Honestly you were right to leave early because nobody at that party ever listens to anyone"
)


def example(split: str, n: int, *, trace: str = "") -> dict:
    reply = f"Reply {n} of {split}."
    return {
        "example_id": build_example_id(
            dataset="reddit", post_id=f"p{n}", user_id="u1", turn_id=1, reply=reply
        ),
        "data_source": "reddit",
        "user_id": "u1",
        "post_id": f"p{n}",
        "turn_id": 1,
        "timestamp": 1_700_000_000 + n,
        "messages": [
            {"role": "user", "name": "op", "content": f"Post {n}: should I stay or go?"},
            {"role": "user", "name": "HUMAN", "content": "My earlier comment."},
        ],
        "persona": "Interests:\n  - board games",
        "ground_truth": reply,
        "trace": trace,
        "states": "",
    }


@pytest.fixture
def prepared(tmp_path):
    folder = tmp_path / "prepared"
    folder.mkdir()
    for split, count in (("train", 6), ("test", 3)):
        rows = [example(split, n) for n in range(count)]
        pq.write_table(
            pa.Table.from_pylist(rows, schema=PREPARED_SCHEMA), folder / f"{split}.parquet"
        )
    return folder


def reply_of(request) -> str:
    return request.messages[0]["content"].rsplit(REPLY_MARK, 1)[1]


def good_trace(request) -> str:
    tag = reply_of(request).split(".")[0].lower()
    return json.dumps(
        {"trace": f"I recognise {tag} as my own kind of answer. I keep it short and calm."}
    )


def spec(server: ScriptedServer, model: str = "trace-model") -> str:
    return f"openai:{model}@{server.base_url}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"trace": "I disagree with them. I will say so, kindly."}', "ok"),  # valid
        ('```json\n{"trace": "I agree. I say it warmly."}\n```', "ok"),  # fenced
        ('Here: {"trace": "I am amused! I answer with a joke?"} done', "ok"),  # chatter around
        ('{"trace": "I feel  torn.\\n\\nI hedge, e.g. with a question."}', "ok"),  # abbreviation
        ("", "the reply was empty"),  # empty reply
        (None, "the reply was empty"),  # null content
        ("I disagree. I will say so.", "no JSON object"),  # plain text
        ('{"trace": "I disagree.', "no JSON object"),  # cut short
        ('{"trace": "a",}', "invalid JSON"),  # broken syntax
        ('{"trace": "I agree. I say it.", "trace": "I agree."}', "the JSON names the key"),
        ('{"thought": "I disagree. Politely."}', 'the JSON needs a "trace"'),  # wrong key
        ('{"trace": "   "}', "the trace is empty"),  # blank trace
        ('{"trace": "I just agree."}', "the trace has 1 sentence;"),  # one sentence
        ('{"trace": "' + "I nod. " * 7 + '"}', "the trace has 7 sentences"),  # too long
        ('{"trace": "<think>I agree. I say it.</think>"}', "the trace contains tags"),  # markup
        ('{"trace": "I agree. <response>Yes</response>"}', "the trace contains tags"),  # markup
        ('{"trace": "Reply 1 of train. Reply 1 of train."}', "ok"),  # short reply, not a copy
    ],
)
def test_parse_trace_reply(text, problem):
    trace, reason = parse_trace_reply(text, reply="Reply 1 of train.")
    assert reason.startswith(problem)
    assert (trace is not None) == (problem == "ok")


@pytest.mark.parametrize(
    ("trace", "is_copy"),
    [
        (LONG_REPLY + ".", True),  # the reply itself
        (f"I think it over. I say: {LONG_REPLY.lower()}!", True),  # quoted inside
        ("I side with them. I say leaving early was right since nobody listens there.", False),
    ],
)
def test_a_trace_may_not_copy_the_reply(trace, is_copy):
    _, reason = parse_trace_reply(json.dumps({"trace": trace}), reply=LONG_REPLY)
    assert (reason == "the trace quotes the reply word for word") == is_copy


def test_prompt_shows_persona_context_and_reply():
    row = example("train", 0)
    row["messages"] = row["messages"] * 15 + [
        {"role": "user", "name": "x", "content": "</real_reply>"}
    ]
    prompt = build_trace_prompt(row)
    assert "Interests:\n  - board games" in prompt
    assert "**HUMAN**: My earlier comment." in prompt and "(11 earlier messages left out)" in prompt
    assert "</real_reply>" not in prompt  # sanitised
    assert prompt.endswith(REPLY_MARK + "Reply 0 of train.")
    assert trace_prompt_version() == "trace-v1"


def test_run_writes_traces_that_sft_think_trains_on(prepared, tmp_path):
    lock, active, peak = threading.Lock(), [0], [0]

    def reply(request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return good_trace(request)

    out = tmp_path / "out"
    with ScriptedServer(reply_fn=reply) as server:
        summary = run_traces(input_dir=prepared, out_dir=out, llm=spec(server), concurrency=2)
    assert peak[0] == 2 and len(server.chat_requests) == 9
    assert [(s.split, s.rows, s.generated, s.failed) for s in summary.splits] == [
        ("test", 3, 3, 0),
        ("train", 6, 6, 0),
    ]
    train = load_prepared(out / "train.parquet")
    assert (
        train[2]["trace"]
        == "I recognise reply 2 of train as my own kind of answer. I keep it short and calm."
    )
    assert pq.read_schema(out / "train.parquet").equals(PREPARED_SCHEMA)
    records = [json.loads(line) for line in (out / TRACE_LOG).read_text().splitlines()]
    assert len(records) == 9 and set(records[0]) == {"example_id", "trace", "prompt_version", "llm"}
    assert records[0]["llm"] == "openai:trace-model" and records[0]["prompt_version"] == "trace-v1"
    info = json.loads((out / TRACE_SUMMARY).read_text())
    assert info["splits"]["train"]["generated"] == 6 and info["failed"] == {}
    dataset = build_sft_dataset(train, state_set="think_r", thinking=True)
    assert len(dataset) == 6
    expected = f"{train[2]['trace']}\n</think>\n\n<response>Reply 2 of train.</response>"
    assert any(c.startswith(expected) for c in dataset["completion"])


def test_empty_reply_is_retried_then_accepted(prepared, tmp_path):
    def reply(request):
        return "" if len(request.messages) == 1 else good_trace(request)

    with ScriptedServer(reply_fn=reply) as server:
        summary = run_traces(
            input_dir=prepared, out_dir=tmp_path / "out", llm=spec(server), retry=FAST
        )
        retries = [r for r in server.chat_requests if len(r.messages) == 3]
    assert len(retries) == 9 and not summary.failed
    assert retries[0].messages[1] == {"role": "assistant", "content": ""}
    assert "cannot be used: the reply was empty" in retries[0].messages[2]["content"]
    assert summary.ledger["retries"] == {"invalid_reply": 9}
    assert all(r["trace"] for r in load_prepared(tmp_path / "out" / "train.parquet"))


def test_failing_example_is_reported_and_left_without_a_trace(prepared, tmp_path):
    out = tmp_path / "out"

    def reply(request):
        if reply_of(request) == "Reply 4 of train.":
            return '{"trace": "<think>I refuse.</think>"}'
        return good_trace(request)

    with ScriptedServer(reply_fn=reply) as server:
        result = CliRunner().invoke(
            app, ["traces", "-i", str(prepared), "-o", str(out), "--llm", spec(server)]
        )
        calls = sum(reply_of(r) == "Reply 4 of train." for r in server.chat_requests)
    assert result.exit_code == 1, result.output  # a step that left examples without a trace
    assert calls == 3  # the first answer and two content retries
    failed_id = example("train", 4)["example_id"]
    assert f"FAILED for 1 examples ({failed_id})" in result.output
    assert "train: 6 rows: 5 generated, 0 cached, 0 kept, 1 failed" in result.output
    info = json.loads((out / TRACE_SUMMARY).read_text())
    assert info["failure_reasons"] == {"invalid_reply": 1}
    assert info["failed"][failed_id] == "invalid_reply (the trace contains tags or markup)"
    train = load_prepared(out / "train.parquet")
    assert train[4]["trace"] == "" and all(r["trace"] for i, r in enumerate(train) if i != 4)
    completions = build_sft_dataset(train, state_set="think_r", thinking=True)["completion"]
    assert len(completions) == 5 and not any(c.startswith("\n</think>") for c in completions)

    with ScriptedServer(reply_fn=good_trace) as server:
        again = run_traces(input_dir=prepared, out_dir=out, llm=spec(server))
        assert [reply_of(r) for r in server.chat_requests] == ["Reply 4 of train."]
    assert not again.failed and again.splits[1].cached == 5 and again.splits[1].generated == 1


def test_an_interrupted_run_resumes_from_the_log(prepared, tmp_path):
    out = tmp_path / "out"
    answered = threading.Event()
    state = {"calls": 0, "hang": True}

    def reply(request):
        state["calls"] += 1
        if state["hang"] and state["calls"] > 4:
            answered.set()
            return Reply(content=good_trace(request), delay_s=60)  # never in time
        return good_trace(request)

    with ScriptedServer(reply_fn=reply) as server:
        code = (
            "from humanlm.enrich.traces import run_traces\n"
            f"run_traces(input_dir={str(prepared)!r}, out_dir={str(out)!r}, "
            f"llm={spec(server)!r}, concurrency=1)\n"
        )
        child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
        try:
            assert answered.wait(30), "the child never reached its fifth example"
            time.sleep(0.2)
        finally:
            child.kill()  # a crash: no cleanup runs in the child
            child.wait()
        assert len((out / TRACE_LOG).read_text().splitlines()) == 4
        assert not (out / "train.parquet").exists()
        with (out / TRACE_LOG).open("a") as fh:
            fh.write('{"example_id": "reddit-half')  # a line cut short by the kill
        state["hang"], state["calls"] = False, 0
        summary = run_traces(input_dir=prepared, out_dir=out, llm=spec(server), retry=FAST)
    assert state["calls"] == 9 - 4
    assert sum(s.cached for s in summary.splits) == 4 and not summary.failed
    assert all(r["trace"] for s in ("train", "test") for r in load_prepared(out / f"{s}.parquet"))

    with ScriptedServer(reply_fn=good_trace) as server:  # another model: the log does not count
        run_traces(input_dir=prepared, out_dir=out, llm=spec(server, "other"))
        assert len(server.chat_requests) == 9


def test_rows_with_traces_are_kept_unless_overwrite(tmp_path):
    folder = tmp_path / "prepared"
    folder.mkdir()
    rows = [example("train", 0, trace="My own trace. Kept."), example("train", 1)]
    pq.write_table(pa.Table.from_pylist(rows, schema=PREPARED_SCHEMA), folder / "train.parquet")
    with ScriptedServer(reply_fn=good_trace) as server:
        summary = run_traces(input_dir=folder, out_dir=folder, llm=spec(server))  # in place
        assert [reply_of(r) for r in server.chat_requests] == ["Reply 1 of train."]
    assert summary.splits[0].kept == 1 and summary.splits[0].generated == 1
    assert [r["trace"] for r in load_prepared(folder / "train.parquet")][0] == "My own trace. Kept."
    with ScriptedServer(reply_fn=good_trace) as server:
        summary = run_traces(
            input_dir=folder, out_dir=folder, llm=spec(server), overwrite=True, splits=["train"]
        )
        assert [reply_of(r) for r in server.chat_requests] == ["Reply 0 of train."]
    assert summary.splits[0].generated == 1 and summary.splits[0].cached == 1
    assert load_prepared(folder / "train.parquet")[0]["trace"].startswith("I recognise reply 0")


def test_unusable_input_or_config_is_an_error(prepared, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DataError, match="no such folder"):
        run_traces(
            input_dir=tmp_path / "missing", out_dir=out, llm="openai:m@http://127.0.0.1:9/v1"
        )
    with pytest.raises(DataError, match="no val.parquet"):
        run_traces(input_dir=prepared, out_dir=out, llm="openai:m", splits=["train", "val"])
    with pytest.raises(ConfigError, match="trace model needs a chat model"):
        run_traces(input_dir=prepared, out_dir=out, llm="embedding:minilm")
    pq.write_table(pa.table({"example_id": ["a"]}), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="missing columns"):
        run_traces(input_dir=tmp_path, out_dir=out, llm="openai:m", splits=["bad"])
    assert not out.exists()


def test_help_shows_examples():
    result = CliRunner().invoke(app, ["traces", "--help"])
    assert result.exit_code == 0
    assert "humanlm data traces --input data/reddit --out data/reddit_think" in result.output


def test_refused_key_stops_the_run_and_keeps_finished_traces(prepared, tmp_path):
    out = tmp_path / "out"
    with (
        ScriptedServer(reply_fn=good_trace) as server,
        pytest.raises(JudgeUnavailableError, match="401"),
    ):
        server.enqueue(json.dumps({"trace": "I agree. I say so."}), Reply(status=401))
        run_traces(input_dir=prepared, out_dir=out, llm=spec(server), concurrency=1, retry=FAST)
    assert len((out / TRACE_LOG).read_text().splitlines()) == 1
    assert not (out / "train.parquet").exists()
