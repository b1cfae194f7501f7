"""``humanlm judge`` end to end against the scripted server: JSONL in, JSONL + ledger out."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from humanlm.cli.judge import app
from humanlm.testing import RecordedRequest, Reply, faults
from humanlm.testing.judge_replies import candidates_in, group_reply, judge_reply_fn, real_reply_in

from .conftest import CONTEXT, TRUTH

ROWS = [
    {
        "example_id": "a",
        "state": "stance",
        "context": CONTEXT,
        "ground_truth": TRUTH,
        "candidates": ["NTA she owes you", "YTA", "NTA she owes you", ""],
    },
    {
        "example_id": "b",
        "state": "response",
        "context": CONTEXT,
        "ground_truth": TRUTH,
        "candidates": [TRUTH, "NTA"],
        "extra": 1,
    },
    {"example_id": 3, "state": "goal", "context": [], "ground_truth": "ok", "candidates": [""]},
]


def write_rows(path: Path, rows) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_group_mode_end_to_end_with_cache_rerun(server, tmp_path: Path) -> None:
    server.reply_fn = judge_reply_fn()
    src, out = write_rows(tmp_path / "in.jsonl", ROWS), tmp_path / "out" / "scored.jsonl"
    spec = f"openai:judge-model@{server.base_url}"
    result = invoke("--input", str(src), "--out", str(out), "--judge", spec, "--no-progress")
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert [r["example_id"] for r in rows] == ["a", "b", 3]
    first = rows[0]
    assert first["scores"][0] == first["scores"][2] and first["scores"][3] == 0.0
    assert rows[1]["scores"][0] == pytest.approx(min(1.0, rows[1]["scores"][1] + 0.1))
    assert rows[1]["extra"] == 1 and rows[2]["scores"] == [0.0]
    assert [r["reason"] for r in rows] == ["ok", "ok", "bad_format"]
    assert all(r["judge"] == spec and r["prompt_version"].startswith("judge-group-v") for r in rows)
    ledger = json.loads((out.parent / "judge_ledger.json").read_text())
    assert ledger["calls"] == 2 == len(server.chat_requests) and ledger["cache_hits"] == 0
    assert all(r.body["max_tokens"] == 4096 for r in server.chat_requests)
    assert "2 requests" in result.output

    again = invoke("-i", str(src), "-o", str(out), "--judge", spec, "--temperature", "0")
    assert again.exit_code == 0
    assert len(server.chat_requests) == 4  # another temperature: judged again
    again = invoke("-i", str(src), "-o", str(out), "--judge", spec, "--temperature", "0")
    assert len(server.chat_requests) == 4  # every row was scored: nothing to ask
    assert "3 reused" in again.output
    again = invoke("-i", str(src), "-o", str(out), "--judge", spec, "--temperature", "0", "--fresh")
    assert json.loads((out.parent / "judge_ledger.json").read_text())["cache_hits"] == 2
    assert len(server.chat_requests) == 4 and read_rows(out)[0]["scores"] == first["scores"]
    fresh = (
        "-i",
        str(src),
        "-o",
        str(out),
        "--judge",
        spec,
        "--temperature",
        "0",
        "--no-cache",
        "--fresh",
    )
    invoke(*fresh)
    assert len(server.chat_requests) == 6


def test_a_run_that_scored_nothing_exits_1_unless_allowed(server, tmp_path: Path) -> None:
    # issue 24: a judge that scored no candidate exited 0, and a pipeline read it as a success.
    server.reply_fn = lambda request: faults.server_error()
    src, out = write_rows(tmp_path / "in.jsonl", ROWS[:1]), tmp_path / "scored.jsonl"
    args = ["-i", str(src), "-o", str(out), "--judge", f"openai:m@{server.base_url}"]
    args += ["--max-retries", "1", "--timeout", "2", "--no-cache", "--no-progress"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "scored none of the 3 candidates" in line and "--allow-unscored" in line
    assert read_rows(out)[0]["reason"] == "transport_error"  # the rows are written all the same
    allowed = invoke(*args, "--allow-unscored")
    assert allowed.exit_code == 0 and "error:" not in allowed.output
    (row,) = read_rows(out)
    assert row["scores"] == [None, None, None, 0.0] and row["reason"] == "transport_error"
    ledger = json.loads((tmp_path / "judge_ledger.json").read_text())
    assert ledger["failures"] == {"transport_error": 2}  # one row, unscored in both runs


def test_aspects_mode(server, tmp_path: Path) -> None:
    server.reply_fn = judge_reply_fn(lambda c, r: 0.5)
    rows = [
        {"example_id": "r1", "context": CONTEXT, "ground_truth": TRUTH, "candidates": ["NTA"]},
        {
            "example_id": "r2",
            "state": "response",
            "context": CONTEXT,
            "ground_truth": TRUTH,
            "candidates": [""],
        },
    ]
    src, out = write_rows(tmp_path / "in.jsonl", rows), tmp_path / "aspects.jsonl"
    result = invoke(
        "-i",
        str(src),
        "-o",
        str(out),
        "--judge",
        f"openai:m@{server.base_url}",
        "--mode",
        "aspects",
    )
    assert result.exit_code == 0, result.output
    first, second = read_rows(out)
    assert set(first["scores"]) == {"stance", "emotion", "belief", "value", "goal", "communication"}
    assert set(first["scores"].values()) == {0.5} and first["reason"] == "ok"
    assert set(second["scores"].values()) == {0.0} and second["reason"] == "bad_format"
    assert first["prompt_version"].startswith("judge-aspects-v")
    assert len(server.chat_requests) == 1


def test_embedding_judge_runs_offline(tmp_path: Path) -> None:
    src, out = write_rows(tmp_path / "in.jsonl", ROWS), tmp_path / "sim.jsonl"
    result = invoke("-i", str(src), "-o", str(out), "--judge", "embedding:minilm")
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert rows[1]["scores"][0] == 1.0 and 0.0 <= rows[0]["scores"][1] <= 1.0
    assert rows[0]["prompt_version"] == "minilm-cosine-v1"


BAD_INPUT = [
    ("{not json", None, "line 1"),
    (json.dumps({**ROWS[0], "candidates": "NTA"}), "candidates", "line 1"),
    (
        json.dumps({k: v for k, v in ROWS[0].items() if k != "ground_truth"}),
        "ground_truth",
        "line 1",
    ),
    (json.dumps({**ROWS[0], "state": "mood"}), "state", "line 1"),
    (json.dumps({**ROWS[0], "context": [{"name": "x"}]}), "context", "line 1"),
    (json.dumps({**ROWS[0], "candidates": []}), "candidates", "line 1"),
    (json.dumps({**ROWS[0], "data_source": 7}), "data_source", "line 1"),  # issue 21
]


@pytest.mark.parametrize(("line", "field", "where"), BAD_INPUT)
def test_unusable_input_exits_2_naming_file_line_and_field(server, tmp_path, line, field, where):
    src = tmp_path / "bad.jsonl"
    src.write_text(line + "\n", encoding="utf-8")
    out = tmp_path / "never.jsonl"
    env = {**os.environ, "OPENAI_API_KEY": ""}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "humanlm.cli.judge",
            "-i",
            str(src),
            "-o",
            str(out),
            "--judge",
            f"openai:m@{server.base_url}",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    assert "bad.jsonl" in proc.stderr and where in proc.stderr and "Traceback" not in proc.stderr
    if field:
        assert f"'{field}'" in proc.stderr
    assert not out.exists() and server.chat_requests == []


def test_a_later_bad_line_is_named_and_nothing_is_judged(server, tmp_path: Path) -> None:
    src = write_rows(tmp_path / "in.jsonl", [ROWS[0], ROWS[1], {**ROWS[0], "example_id": None}])
    with pytest.raises(Exception, match=r"line 3.*|example_id") as info:
        invoke(
            "-i",
            str(src),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--judge",
            f"openai:m@{server.base_url}",
        )
    assert "example_id" in str(info.value) and "line 3" in str(info.value)
    assert server.chat_requests == []


def test_bad_configuration_exits_2(tmp_path: Path) -> None:
    src = write_rows(tmp_path / "in.jsonl", ROWS)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "humanlm.cli.judge",
            "-i",
            str(src),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--judge",
            "nonsense",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "judge spec" in proc.stderr


def test_help_shows_examples_and_mounts_as_a_subcommand() -> None:
    result = invoke("--help")
    assert result.exit_code == 0 and "Examples" in result.output and "--judge" in result.output
    parent = typer.Typer()
    parent.add_typer(app, name="judge")

    @parent.command()
    def other() -> None:
        """A sibling command, as in the real humanlm app."""

    mounted = CliRunner().invoke(parent, ["judge", "--help"])
    assert mounted.exit_code == 0 and "--concurrency" in mounted.output


def test_rerun_judges_only_the_unscored_rows(server, tmp_path: Path) -> None:
    healthy = judge_reply_fn()
    server.reply_fn = lambda request: faults.server_error()
    src, out = write_rows(tmp_path / "in.jsonl", ROWS), tmp_path / "scored.jsonl"
    base = ("-i", str(src), "-o", str(out), "--judge", f"openai:m@{server.base_url}")
    quick = (*base, "--max-retries", "0", "--timeout", "2", "--no-progress")
    assert invoke(*quick).exit_code == 1  # nothing scored: the decided row is a format zero
    assert [r["reason"] for r in read_rows(out)] == ["transport_error"] * 2 + ["bad_format"]
    server.reply_fn = healthy
    before = len(server.chat_requests)
    result = invoke(*quick)
    assert result.exit_code == 0 and "1 reused" in result.output
    assert len(server.chat_requests) - before == 2  # the two failed groups, not the decided one
    assert [r["reason"] for r in read_rows(out)] == ["ok", "ok", "bad_format"]
    ledger = json.loads((tmp_path / "judge_ledger.json").read_text())
    assert len(ledger["invocations"]) == 2 and ledger["failures"] == {"transport_error": 2}
    assert ledger["calls"] == len(server.chat_requests)


def test_rows_of_a_killed_run_are_kept(server, tmp_path: Path) -> None:
    from humanlm.judge.batch import partial_path

    server.reply_fn = judge_reply_fn()
    src, out = write_rows(tmp_path / "in.jsonl", ROWS), tmp_path / "scored.jsonl"
    spec = f"openai:m@{server.base_url}"
    invoke("-i", str(src), "-o", str(out), "--judge", spec, "--no-cache")
    done = read_rows(out)
    out.unlink()  # as if killed before the final write: only the partial file holds rows
    partial_path(out).write_text(json.dumps(done[0]) + "\n" + json.dumps(done[1])[:30])
    before = len(server.chat_requests)
    result = invoke("-i", str(src), "-o", str(out), "--judge", spec, "--no-cache")
    assert result.exit_code == 0 and "1 reused" in result.output  # row a; b is cut short
    assert len(server.chat_requests) - before == 1
    assert read_rows(out)[0]["scores"] == done[0]["scores"]
    assert not partial_path(out).exists()


def test_out_that_is_a_folder_is_refused_before_any_call(server, tmp_path: Path) -> None:
    src, out = write_rows(tmp_path / "in.jsonl", ROWS), tmp_path / "taken"
    out.mkdir()
    result = CliRunner().invoke(
        app, ["-i", str(src), "-o", str(out), "--judge", f"openai:m@{server.base_url}"]
    )
    assert result.exit_code != 0 and "is a folder" in str(result.exception or result.output)
    assert server.chat_requests == []


def test_non_utf8_input_names_the_file_and_byte_offset(server, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(json.dumps(ROWS[0]).encode() + b"\n" + b'{"example_id": "\xff"}\n')
    with pytest.raises(Exception, match=r"not UTF-8 text \(byte 0xff at byte offset \d+\)") as err:
        from humanlm.judge.batch import read_rows as read_input

        read_input(src)
    assert str(src) in str(err.value)


ISSUE_ROWS = [
    {
        "example_id": f"e{i}",
        "state": "stance",
        "context": CONTEXT,
        "ground_truth": TRUTH,
        "candidates": [f"NTA, she owes you {i}", f"YTA for asking {i}"],
    }
    for i in range(2)
]


def test_the_paper_judge_spec_scores_every_candidate_under_openai_rules(
    server, tmp_path: Path
) -> None:
    # issue 21: against a stand-in applying OpenAI's rules, this scored 0 of 4 and exited 0.
    server.reply_fn = judge_reply_fn()
    src, out = write_rows(tmp_path / "in.jsonl", ISSUE_ROWS), tmp_path / "scored.jsonl"
    spec = f"openai:gpt-5-mini@{server.base_url}"
    result = invoke("-i", str(src), "-o", str(out), "--judge", spec, "--temperature", "1")
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert [None in r["scores"] for r in rows] == [False, False] and "(0 unscored" in result.output
    assert server.refused == 0 and len(server.chat_requests) == 2
    assert all(
        r["judge_params"] == {"temperature": 1.0, "max_completion_tokens": 4096} for r in rows
    )


def test_a_judge_that_scores_nothing_says_so_with_counts(server, tmp_path: Path, caplog) -> None:
    # issue 21: a run in which every request was refused must not read as a success.
    error = {"message": "Unsupported parameter: 'seed'", "param": "seed", "type": "x"}
    server.reply_fn = lambda request: Reply(status=400, body=json.dumps({"error": error}))
    src, out = write_rows(tmp_path / "in.jsonl", ISSUE_ROWS), tmp_path / "scored.jsonl"
    spec = f"openai:m@{server.base_url}"
    with caplog.at_level(logging.WARNING, logger="humanlm.judge.batch"):
        result = invoke("-i", str(src), "-o", str(out), "--judge", spec, "--no-cache")
    assert "(2 unscored" in result.output and "Unsupported parameter: 'seed'" in result.output
    (line,) = [r.getMessage() for r in caplog.records if r.name == "humanlm.judge.batch"]
    assert "scored none of the 4 candidates" in line and "rejected x2" in line
    assert "Unsupported parameter: 'seed'" in line
    assert len(server.chat_requests) == 2  # one request per row: a 400 is not retried


def test_rows_of_a_chat_source_go_through_the_gate_and_are_reused(server, tmp_path: Path) -> None:
    # issue 21: a row's data_source decides the Chat gate; a rerun reuses the gated rows.
    server.reply_fn = judge_reply_fn(lambda c, r: 0.5)
    chat = {**ROWS[0], "example_id": "chat", "state": "response", "data_source": "wildchat"}
    chat["candidates"] = ["no i meant the word", "Great question! I'd be happy to help you."]
    other = {**chat, "example_id": "opinion", "data_source": "reddit"}
    src, out = write_rows(tmp_path / "in.jsonl", [chat, other]), tmp_path / "scored.jsonl"
    spec = f"openai:judge-model@{server.base_url}"
    assert invoke("-i", str(src), "-o", str(out), "--judge", spec).exit_code == 0
    rows = read_rows(out)
    assert rows[0]["scores"] == [0.5, 0.0] and rows[1]["scores"] == [0.5, 0.5]
    assert rows[0]["reasons"] == ["ok", "assistant_voice"] and rows[0]["reason"] == "ok"
    assert rows[0]["prompt_version"].endswith("+gate1")
    assert not rows[1]["prompt_version"].endswith("+gate1")
    again = invoke("-i", str(src), "-o", str(out), "--judge", spec)
    assert "2 reused" in again.output and len(server.chat_requests) == 2
    assert read_rows(out)[0]["reasons"] == ["ok", "assistant_voice"]  # kept when reused


def repeated_score_reply(request: RecordedRequest) -> Reply:
    """Each candidate's entry names "score" twice: 0.4, then 1.0 (the reply of issue 24)."""
    entries = ", ".join(
        f'"{k}": {{"thought": "judged", "score": 0.4, "score": 1.0}}'
        for k in candidates_in(request.prompt)
    )
    return Reply(content=f'{{"key_points": ["a point"], "scores": {{{entries}}}}}')


def test_a_reply_that_repeats_a_key_is_unscored_and_asked_again(
    server, tmp_path: Path, caplog
) -> None:
    # issue 24: {"score": 0.4, ..., "score": 1.0} was read as 1.0 (last key wins) and exited 0.
    server.reply_fn = repeated_score_reply
    src, out = write_rows(tmp_path / "in.jsonl", ISSUE_ROWS), tmp_path / "scored.jsonl"
    args = ["-i", str(src), "-o", str(out), "--judge", f"openai:m@{server.base_url}"]
    args += ["--max-retries", "2", "--no-cache", "--no-progress"]
    with caplog.at_level(logging.WARNING, logger="humanlm.judge.client"):
        result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    rows = read_rows(out)
    assert [r["scores"] for r in rows] == [[None, None]] * 2
    assert {r["reason"] for r in rows} == {"parse_failure"}
    assert len(server.chat_requests) == 6  # retried like any unreadable reply: 3 per row
    warned = [r.getMessage() for r in caplog.records if r.name == "humanlm.judge.client"]
    assert len(warned) == 2 and all("duplicate key 'score'" in w for w in warned)

    asked: set[str] = set()

    def repeated_once_then_clean(request: RecordedRequest) -> Reply:
        if request.prompt not in asked:
            asked.add(request.prompt)
            return repeated_score_reply(request)
        return Reply(content=group_reply({k: 0.4 for k in candidates_in(request.prompt)}))

    server.reply_fn = repeated_once_then_clean
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert [r["scores"] for r in read_rows(out)] == [[0.4, 0.4]] * 2  # never 1.0


def completion_body(content: str, usage: object) -> str:
    """A chat completion whose ``usage`` is exactly ``usage``."""
    message = {"role": "assistant", "content": content}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return json.dumps({"id": "c", "object": "chat.completion", "choices": [choice], "usage": usage})


BAD_USAGE = [
    {"prompt_tokens": -1_500_000_000_000, "completion_tokens": 10, "total_tokens": 0},
    {"prompt_tokens": "many", "completion_tokens": 10, "total_tokens": 10},
    {"prompt_tokens": 120, "completion_tokens": 2.5, "total_tokens": 122.5},
]


def test_usage_that_is_not_a_count_is_unknown_and_the_judgement_stands(
    server, tmp_path: Path
) -> None:
    # issue 24: negative usage made the cost minus 1.5 million dollars; a text count raised
    # inside the client and threw away a valid judgement as a transport error.
    rows = [
        {**ISSUE_ROWS[0], "example_id": f"u{i}", "ground_truth": f"{TRUTH} {i}"} for i in range(4)
    ]
    usage = {f"{TRUTH} {i}": u for i, u in enumerate(BAD_USAGE)}

    def reply(request: RecordedRequest) -> Reply:
        content = group_reply({k: 0.5 for k in candidates_in(request.prompt)})
        bad = usage.get(real_reply_in(request.prompt))
        if bad is None:
            return Reply(content=content, usage=(100, 20))
        return Reply(body=completion_body(content, bad))

    server.reply_fn = reply
    src, out = write_rows(tmp_path / "in.jsonl", rows), tmp_path / "scored.jsonl"
    spec = f"openai:gpt-4o-mini@{server.base_url}"
    result = invoke("-i", str(src), "-o", str(out), "--judge", spec, "--no-cache", "--no-progress")
    assert result.exit_code == 0, result.output
    assert [r["scores"] for r in read_rows(out)] == [[0.5, 0.5]] * 4
    assert len(server.chat_requests) == 4  # no reply was refused or asked again
    ledger = json.loads((tmp_path / "judge_ledger.json").read_text())
    assert ledger["usage_invalid"] == 3 and ledger["failures"] == {} and ledger["retries"] == {}
    assert (ledger["input_tokens"], ledger["output_tokens"]) == (100, 20)  # the valid reply's
    assert ledger["cost_usd"] == pytest.approx((100 * 0.15 + 20 * 0.60) / 1e6)
    assert "usage unknown for 3 requests" in result.output
