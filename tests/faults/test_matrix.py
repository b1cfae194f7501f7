"""The fault matrix: every LLM-calling command against a failing scripted server, as a user runs it.

Each fault run is the real console entry point in a subprocess (bounded by a subprocess
timeout) against ``ScriptedServer`` on 127.0.0.1; reruns and the bad-file cases call the same
entry point in this process. Each case checks: the exit code, no traceback, no asyncio
"never retrieved" noise, the records before and after (nothing lost, nothing half-valid), a
rerun with the service back heals what failed, and the fake API key set in the environment
appears in no output and no file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from humanlm.testing import RecordedRequest, Reply, ScriptedServer
from humanlm.testing.judge_replies import (
    aspects_reply,
    candidates_in,
    dimensions_in,
    group_reply,
    judge_reply_fn,
    real_reply_in,
)
from tests.enrich.test_personas import persona_json
from tests.enrich.test_traces import good_trace
from tests.enrich.test_traces import prepared as _prepared_fixture
from tests.ingest.test_dataset import forum_items, write_items

pytestmark = pytest.mark.slow

SECRET = "sk-test-SECRET-0123456789"
SRC = Path(__file__).resolve().parents[2] / "src"
# Every case ends well inside this; a hang would be stopped here and fail the test.
LIMIT_S = 90
FAST = ["--max-retries", "1", "--timeout", "2"]
HANG_DEADLINE_S = 1  # the request deadline of the runs that meet a hang: each attempt waits it
# A judge no call may reach (every case below fails before judging): nothing listens on port 9.
CLOSED_JUDGE = "openai:j@http://127.0.0.1:9/v1"


def fast(fault: str) -> list[str]:
    """One retry and a short deadline; shorter still where the reply never comes."""
    return ["--max-retries", "1", "--timeout", str(HANG_DEADLINE_S if fault == "hang_60s" else 2)]


ReplyFn = Callable[[RecordedRequest], Reply]

prepared = _prepared_fixture  # the traces input: a small prepared folder


def closed_port_url() -> str:
    """A loopback URL nothing listens on (a refused connection)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def cli_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "OPENAI_API_KEY": SECRET,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "humanlm.cli.main", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
    )


def kill_once_written(*args: str, cwd: Path, log: Path, records: int) -> bytes:
    """Run the CLI, SIGKILL it once ``log`` holds ``records`` lines; return the log as it was.

    The wait is bounded; the process must still be running when it is killed (mid-run), and
    what it wrote to stdout and stderr is checked like any other output.
    """
    output = cwd / "killed_run.log"
    with output.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "humanlm.cli.main", *args],
            cwd=cwd,
            env=cli_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + LIMIT_S
            while proc.poll() is None and time.monotonic() < deadline:
                if log.exists() and log.read_bytes().count(b"\n") >= records:
                    break
                time.sleep(0.05)
            mid_run = proc.poll() is None
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=LIMIT_S)
    text = output.read_text()
    assert mid_run, text  # the run was still going when it was killed
    assert "Traceback" not in text and SECRET not in text, text
    return log.read_bytes()


def slowed(reply_fn: ReplyFn, delay_s: float) -> ReplyFn:
    """``reply_fn`` with every answer sent after ``delay_s`` (a run slow enough to kill)."""

    def reply(request: RecordedRequest) -> Reply:
        answer = reply_fn(request)
        return dataclasses.replace(answer, delay_s=delay_s)

    return reply


def assert_healed_log(log: Path, kept: bytes, key: str, total: int) -> list[dict]:
    """The log starts with the records kept at the kill, byte for byte, and holds each of
    ``total`` records exactly once; no temporary file is left beside it."""
    assert log.read_bytes().startswith(kept)
    records = read_out(log)
    assert len({str(r[key]) for r in records}) == len(records) == total
    assert not [p for p in log.parent.rglob("*.tmp")]
    return records


Rerun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def rerun(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Rerun:
    """The same CLI entry point in this process, its exit code and output captured.

    For reruns after a fault and for cases that involve no service (no interpreter start).
    """
    from humanlm.cli.main import main

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        monkeypatch.chdir(cwd)
        capfd.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


def assert_clean(done: subprocess.CompletedProcess[str], folder: Path) -> None:
    """No traceback, no asyncio noise, and the key nowhere: not in the output, not in a file."""
    text = done.stdout + done.stderr
    assert "Traceback" not in text, text
    assert "never retrieved" not in text, text
    assert SECRET not in text
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


# --- judge replies --------------------------------------------------------------------------


def fixed_scores(value: object, *, extra: bool = False) -> ReplyFn:
    """Group and aspects replies with every score ``value`` (a number or a string)."""

    def reply(request: RecordedRequest) -> Reply:
        prompt = request.prompt
        dims = dimensions_in(prompt)
        if dims:
            return Reply(content=aspects_reply({d: value for d in dims}))  # type: ignore[misc]
        numbered = {k: value for k in candidates_in(prompt)}
        if extra:
            numbered[str(len(numbered) + 1)] = 0.5
        return Reply(content=group_reply(numbered))  # type: ignore[arg-type]

    return reply


def first_n_then(n: int, fault: Reply, then: ReplyFn) -> ReplyFn:
    seen: list[int] = []

    def reply(request: RecordedRequest) -> Reply:
        seen.append(1)
        return fault if len(seen) <= n else then(request)

    return reply


def repeated_score_key(request: RecordedRequest) -> Reply:
    """Group and aspects replies whose every entry names "score" twice: 0.4, then 1.0."""
    prompt = request.prompt
    keys = dimensions_in(prompt) or list(candidates_in(prompt))
    entries = ", ".join(f'"{k}": {{"thought": "t", "score": 0.4, "score": 1.0}}' for k in keys)
    return Reply(content=f'{{"key_points": ["a point"], "scores": {{{entries}}}}}')


def negative_usage(request: RecordedRequest) -> Reply:
    """A healthy reply (every score 0.5) whose ``usage`` counts are negative."""
    return dataclasses.replace(fixed_scores(0.5)(request), usage=(-1_500_000_000_000, -7))


HEALTHY_JUDGE = judge_reply_fn()
# fault name -> (reply fn or None for a refused connection, exit code, all scored afterwards);
# a run in which the judge scored nothing exits 1 (issue 24)
JUDGE_FAULTS: dict[str, tuple[ReplyFn | None, int, bool]] = {
    "refused": (None, 1, False),
    "401": (lambda r: Reply(status=401), 2, False),
    "429_retry_after": (
        first_n_then(2, Reply(status=429, headers={"Retry-After": "0.2"}), HEALTHY_JUDGE),
        0,
        True,
    ),
    "500": (lambda r: Reply(status=500), 1, False),
    "hang_60s": (lambda r: Reply(content="{}", delay_s=60), 1, False),
    "malformed_json": (lambda r: Reply(content='{"scores": {"1": '), 1, False),
    "off_scale": (fixed_scores(1.7), 1, False),
    "string_scores": (fixed_scores("0.7"), 0, True),
    "word_scores": (fixed_scores("high"), 1, False),
    "wrong_count": (fixed_scores(0.5, extra=True), 1, False),
    "duplicate_key": (repeated_score_key, 1, False),
    "negative_usage": (negative_usage, 0, True),
}
REASONS = {
    "refused": "transport_error",
    "500": "transport_error",
    "hang_60s": "timeout",
    "malformed_json": "parse_failure",
    "word_scores": "parse_failure",
    "off_scale": "off_scale",
    "wrong_count": "wrong_count",
}


def judge_rows(count: int = 4) -> list[dict]:
    return [
        {
            "example_id": f"ex{i}",
            "state": "stance",
            "context": [{"name": "op", "content": f"Post {i}: should I move abroad?"}],
            "ground_truth": f"Go for it, number {i}.",
            "candidates": [f"Stay home {i}.", f"Go for it {i}."],
        }
        for i in range(count)
    ]


def read_out(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# Transport faults need a process each (a refused key ends the run); the reply faults share one
# run below, one row each.
TRANSPORT = ("refused", "401", "429_retry_after", "500", "hang_60s")


@pytest.mark.parametrize("fault", TRANSPORT)
def test_judge_under_fault_then_rerun(tmp_path: Path, fault: str, rerun: Rerun) -> None:
    judge_case(tmp_path, fault, rerun)


def test_judge_reply_faults_then_rerun(tmp_path: Path, rerun: Rerun) -> None:
    """Malformed JSON, off-scale, numeric-string and word scores, wrong counts, a repeated
    score key, negative usage counts: a row each."""
    faults = (
        "malformed_json", "off_scale", "string_scores", "wrong_count", "word_scores",
        "duplicate_key", "negative_usage",
    )  # fmt: skip
    by_truth = {f"Go for it, number {i}.": JUDGE_FAULTS[f][0] for i, f in enumerate(faults)}

    def reply(request: RecordedRequest) -> Reply:
        answer = by_truth[real_reply_in(request.prompt)]
        assert answer is not None
        return answer(request)

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in judge_rows(len(faults))))
    out = tmp_path / "scored.jsonl"
    with ScriptedServer(reply_fn=reply) as server:
        args = ["judge", "-i", str(src), "-o", str(out), "--judge", f"openai:j@{server.base_url}"]
        done = run_cli(*args, *FAST, "--no-progress", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert_clean(done, tmp_path)
        rows = read_out(out)
        reasons = ["parse_failure", "off_scale", "ok", "wrong_count", "parse_failure"]
        reasons += ["parse_failure", "ok"]  # a repeated key is never read last-key-wins
        assert [r["reason"] for r in rows] == reasons  # "high" is no score
        assert rows[1]["scores"] == [None, None]  # 1.7 is never clipped to 1.0
        assert rows[2]["scores"] == [0.7, 0.7]  # "0.7" is read as 0.7
        assert rows[4]["scores"] == rows[5]["scores"] == [None, None]
        assert rows[6]["scores"] == [0.5, 0.5]  # negative usage: the judgement stands
        ledger = json.loads((tmp_path / "judge_ledger.json").read_text())
        assert ledger["usage_invalid"] == 1 and ledger["input_tokens"] >= 0
        server.reply_fn = HEALTHY_JUDGE
        before = len(server.chat_requests)
        again = rerun(*args, *FAST, cwd=tmp_path)
    assert again.returncode == 0 and "2 reused" in again.stdout, again.stderr
    assert_clean(again, tmp_path)
    assert len(server.chat_requests) - before == 5  # only the five failed rows
    assert all(r["reason"] == "ok" for r in read_out(out))
    assert read_out(out)[2]["scores"] == [0.7, 0.7]  # the scored row is kept as it was


def judge_case(tmp_path: Path, fault: str, rerun: Rerun) -> None:
    reply_fn, code, scored = JUDGE_FAULTS[fault]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in judge_rows()))
    out = tmp_path / "out" / "scored.jsonl"
    with ScriptedServer(reply_fn=reply_fn or HEALTHY_JUDGE) as server:
        url = server.base_url if reply_fn is not None else closed_port_url()
        args = ["judge", "-i", str(src), "-o", str(out), "--judge", f"openai:judge@{url}"]
        done = run_cli(*args, *fast(fault), "--no-progress", cwd=tmp_path)
        assert done.returncode == code, done.stderr
        assert_clean(done, tmp_path)
        if code == 2:
            assert "refused" in one_error_line(done)
            assert not out.exists()  # nothing half-written
        else:
            if code == 1:  # issue 24: nothing scored is not a success
                assert "nothing scored" in one_error_line(done)
            rows = read_out(out)
            assert len(rows) == 4  # every row is there, scored or not
            if scored:
                assert all(r["reason"] == "ok" for r in rows)
                if fault == "string_scores":
                    assert all(r["scores"] == [0.7, 0.7] for r in rows)
            else:
                assert all(r["scores"] == [None, None] for r in rows)  # never clipped to 1 or 0
                assert {r["reason"] for r in rows} == {REASONS[fault]}
        server.reply_fn = HEALTHY_JUDGE
        before = len(server.chat_requests)
        again = rerun(*args[:-1], f"openai:judge@{server.base_url}", *FAST, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_clean(again, tmp_path)
    healed = read_out(out)
    assert [r["example_id"] for r in healed] == [f"ex{i}" for i in range(4)]
    if fault != "string_scores":  # string scores were already fine: kept as they were
        assert all(r["reason"] == "ok" and None not in r["scores"] for r in healed)
    asked = len(server.chat_requests) - before
    assert asked == (0 if scored else 4)  # only what had failed is asked again
    ledger = json.loads((out.parent / "judge_ledger.json").read_text())
    assert len(ledger["invocations"]) == (2 if out.exists() and code != 2 else 1)


def test_judge_killed_mid_run_then_rerun(tmp_path: Path, rerun: Rerun) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in judge_rows(8)))
    out = tmp_path / "scored.jsonl"
    partial = tmp_path / ".scored.jsonl.partial.jsonl"
    args = ["judge", "-i", str(src), "-o", str(out), "--no-cache", "--no-progress"]
    with ScriptedServer(reply_fn=slowed(HEALTHY_JUDGE, 0.4)) as server:
        spec = f"openai:judge@{server.base_url}"
        kill_once_written(
            *args, "--judge", spec, "--concurrency", "1", cwd=tmp_path, log=partial, records=3
        )
    done = len(read_out(partial))
    assert 3 <= done < 8 and not out.exists()
    # The service is back on another port: the endpoint is not part of what a rerun resumes.
    with ScriptedServer(reply_fn=HEALTHY_JUDGE) as server:
        again = rerun(*args, "--judge", f"openai:judge@{server.base_url}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_clean(again, tmp_path)
    rows = read_out(out)
    assert [r["example_id"] for r in rows] == [f"ex{i}" for i in range(8)]
    assert all(r["reason"] == "ok" for r in rows)
    assert len(server.chat_requests) == 8 - done  # finished rows were not asked again
    assert not partial.exists() and not list(tmp_path.rglob("*.tmp"))


# --- eval -------------------------------------------------------------------------------------


def echo_sim(request: RecordedRequest) -> Reply:
    last = str(request.messages[-1].get("content") or "")
    return Reply(content=f"plan</think>\n\n<response>{' '.join(last.split()[-10:])}</response>")


# The run-level effects of a failing judge: unscored records, a refused key, a rerun that heals.
# Transport faults need a run each (a refused key ends it); the reply faults share one below.
# A judge whose every reply repeats its score key scores nothing (issue 24).
EVAL_FAULTS = ("refused", "401", "500", "hang_60s", "duplicate_key")


def eval_args(sim: str, judge: str, out: Path, *, limit: int = 3, fault: str = "") -> list[str]:
    return [
        "eval",
        "--model",
        f"openai:sim@{sim}",
        "--data",
        "demo",
        "--limit",
        str(limit),
        "--judge",
        f"openai:judge@{judge}",
        "--out",
        str(out),
        "embedding=false",
        "progress=false",
        f"judge.timeout_s={HANG_DEADLINE_S if fault == 'hang_60s' else 2}",
        "judge.max_retries=1",
        "simulator.timeout_s=5",
        "simulator.max_retries=1",
    ]


@pytest.mark.parametrize("fault", EVAL_FAULTS)
def test_eval_under_judge_fault_then_rerun(tmp_path: Path, fault: str, rerun: Rerun) -> None:
    reply_fn, code, _ = JUDGE_FAULTS[fault]
    out = tmp_path / "run"
    with (
        ScriptedServer(reply_fn=echo_sim) as sim,
        ScriptedServer(reply_fn=reply_fn or HEALTHY_JUDGE) as judge,
    ):
        url = judge.base_url if reply_fn is not None else closed_port_url()
        done = run_cli(*eval_args(sim.base_url, url, out, fault=fault), cwd=tmp_path)
        assert done.returncode == code, done.stderr
        assert_clean(done, tmp_path)
        if code == 2:
            assert "refused" in one_error_line(done)
        else:
            assert "nothing scored" in one_error_line(done)  # issue 24: exit 1, one line
            results = json.loads((out / "results.json").read_text())
            ra = results["metrics"]["response_alignment"]
            assert ra["examples"] == 3
            assert ra["unscored"] == 3 and ra["score"] is None
            if fault == "duplicate_key":  # issue 24: the sample says why it is unscored
                for record in read_out(out / "samples.jsonl"):
                    for metric in ("response_alignment", "state_alignment"):
                        verdict = record["verdicts"][metric]
                        assert verdict["reason"] == "parse_failure"
                        assert verdict["detail"] == "duplicate key 'score'"
        generated = len(sim.chat_requests)
        judge.reply_fn = HEALTHY_JUDGE
        again = rerun(*eval_args(sim.base_url, judge.base_url, out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_clean(again, tmp_path)
    results = json.loads((out / "results.json").read_text())
    assert results["metrics"]["response_alignment"]["unscored"] == 0
    assert results["metrics"]["state_alignment"]["unscored"] == 0
    if code != 2:
        assert len(sim.chat_requests) == generated  # saved generations are never regenerated
        assert len(results["invocations"]) == 2


def once_rate_limited(then: ReplyFn) -> ReplyFn:
    """A 429 with Retry-After for the first request of each prompt, then ``then``'s answer."""
    seen: set[str] = set()

    def reply(request: RecordedRequest) -> Reply:
        if request.prompt not in seen:
            seen.add(request.prompt)
            return Reply(status=429, headers={"Retry-After": "0.2"})
        return then(request)

    return reply


# fault -> (response reason, response score, state score) of its example; None: unscored
EVAL_REPLY_EXPECTED: dict[str, tuple[str, float | None, float | None]] = {
    "malformed_json": ("parse_failure", None, None),
    "off_scale": ("off_scale", None, None),  # 1.7 is never clipped to 1.0
    "string_scores": ("ok", 0.7, 0.7),  # "0.7" is read as 0.7
    "word_scores": ("parse_failure", None, None),  # "high" is no score
    "wrong_count": ("wrong_count", None, 0.5),  # an extra candidate; the states are fine
}
# fault -> the response verdict's detail: why the judge's reply was refused (issue 24)
EVAL_REPLY_DETAIL: dict[str, str | None] = {
    "malformed_json": "no JSON object in the reply",
    "off_scale": "the score of '1' is 1.7, not in [0, 1]",
    "string_scores": None,
    "word_scores": "no single number as the score of '1'",
    "wrong_count": "a score for '2', which was not asked",
}


def test_eval_reply_faults_then_rerun(tmp_path: Path, rerun: Rerun) -> None:
    """Malformed JSON, off-scale, numeric-string and word scores, wrong candidate counts and a
    429 with Retry-After from the judge: one example each, in one run."""
    faults = [*EVAL_REPLY_EXPECTED, "429_retry_after"]
    answers = {f: JUDGE_FAULTS[f][0] for f in EVAL_REPLY_EXPECTED}
    answers["429_retry_after"] = once_rate_limited(HEALTHY_JUDGE)
    assigned: dict[str, str] = {}  # real reply -> the fault its judge calls get, in arrival order

    def reply(request: RecordedRequest) -> Reply:
        real = real_reply_in(request.prompt)
        if real not in assigned:
            assigned[real] = faults[len(assigned)]
        answer = answers[assigned[real]]
        assert answer is not None
        return answer(request)

    out = tmp_path / "run"
    with ScriptedServer(reply_fn=echo_sim) as sim, ScriptedServer(reply_fn=reply) as judge:
        args = eval_args(sim.base_url, judge.base_url, out, limit=len(faults))
        done = run_cli(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert_clean(done, tmp_path)
        records = {assigned[r["ground_truth"]]: r for r in read_out(out / "samples.jsonl")}
        assert sorted(records) == sorted(faults)
        for fault, (reason, response, states) in EVAL_REPLY_EXPECTED.items():
            r = records[fault]
            assert r["verdicts"]["response_alignment"]["reason"] == reason, fault
            assert r["verdicts"]["response_alignment"]["detail"] == EVAL_REPLY_DETAIL[fault]
            assert r["scores"]["response_alignment"] == response, fault
            assert r["scores"]["state_alignment"] == pytest.approx(states), fault
        asked = [assigned[real_reply_in(q.prompt)] for q in judge.chat_requests]
        assert asked.count("429_retry_after") == 4  # both its prompts: a 429, then the retry
        rate_limited = records["429_retry_after"]
        assert rate_limited["verdicts"]["response_alignment"]["reason"] == "ok"
        assert None not in (
            rate_limited["scores"][m] for m in ("response_alignment", "state_alignment")
        )
        ra = json.loads((out / "results.json").read_text())["metrics"]["response_alignment"]
        assert (ra["scored"], ra["unscored"]) == (2, 4)
        judge.reply_fn = HEALTHY_JUDGE
        before = len(judge.chat_requests)
        again = rerun(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_clean(again, tmp_path)
    assert len(sim.chat_requests) == len(faults)  # no generation is made again
    # response and states of the three examples with neither scored, the response of the
    # wrong-count one (its states verdict comes from the cache)
    assert len(judge.chat_requests) - before == 7
    healed = {assigned[r["ground_truth"]]: r for r in read_out(out / "samples.jsonl")}
    for fault in ("string_scores", "429_retry_after"):  # scored before: kept as they were
        assert healed[fault] == records[fault]
    assert healed["wrong_count"]["scores"]["state_alignment"] == pytest.approx(0.5)
    results = json.loads((out / "results.json").read_text())
    assert results["metrics"]["response_alignment"]["unscored"] == 0
    assert results["metrics"]["state_alignment"]["unscored"] == 0
    assert len(results["invocations"]) == 2


def test_eval_killed_mid_run_then_rerun(tmp_path: Path, rerun: Rerun) -> None:
    out = tmp_path / "run"
    samples = out / "samples.jsonl"
    with (
        ScriptedServer(reply_fn=slowed(echo_sim, 0.3)) as sim,
        ScriptedServer(reply_fn=HEALTHY_JUDGE) as judge,
    ):
        args = [*eval_args(sim.base_url, judge.base_url, out, limit=6), "simulator.concurrency=1"]
        kept = kill_once_written(*args, cwd=tmp_path, log=samples, records=2)
    done = len(read_out(samples))
    assert 2 <= done < 6 and not (out / "results.json").exists()
    with (
        ScriptedServer(reply_fn=echo_sim) as sim,
        ScriptedServer(reply_fn=HEALTHY_JUDGE) as judge,
    ):
        args = [*eval_args(sim.base_url, judge.base_url, out, limit=6), "simulator.concurrency=1"]
        again = rerun(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_clean(again, tmp_path)
    assert_healed_log(samples, kept, "example_id", 6)
    assert len(sim.chat_requests) == 6 - done  # saved generations are not generated again
    results = json.loads((out / "results.json").read_text())
    assert results["counts"]["resumed"] == done
    ra = results["metrics"]["response_alignment"]
    assert (ra["examples"], ra["unscored"]) == (6, 0)


def megabyte_sim(request: RecordedRequest) -> Reply:
    """A simulator that ignores ``max_tokens``: a reply of about 1 MB."""
    return Reply(content="plan</think>\n\n<response>" + "word " * 200_000 + "</response>")


def test_eval_cuts_a_reply_past_the_token_budget(tmp_path: Path) -> None:
    """Issue 24: a 1 MB simulator reply was stored and sent whole to the judge."""
    from humanlm.generate.openai import REPLY_CHARS_PER_TOKEN

    out = tmp_path / "run"
    budget = 64
    with (
        ScriptedServer(reply_fn=megabyte_sim) as sim,
        ScriptedServer(reply_fn=HEALTHY_JUDGE) as judge,
    ):
        args = [*eval_args(sim.base_url, judge.base_url, out, limit=2), f"max_new_tokens={budget}"]
        done = run_cli(*args, cwd=tmp_path)
        judged = [len(json.dumps(q.body)) for q in judge.chat_requests]
    assert done.returncode == 0, done.stderr
    assert_clean(done, tmp_path)
    assert "reply_cut: 2 replies" in done.stdout
    records = read_out(out / "samples.jsonl")
    assert len(records) == 2
    for r in records:
        assert r["reply_cut"] is True and r["finish_reason"] == "length"
        assert len(r["generation"]) == budget * REPLY_CHARS_PER_TOKEN
        assert r["scores"]["response_alignment"] is not None  # the cut reply is still judged
    assert judged and max(judged) < 20_000  # nothing near the megabyte reaches the judge
    assert (out / "samples.jsonl").stat().st_size < 60_000
    results = json.loads((out / "results.json").read_text())
    assert results["counts"]["reply_cut"] == 2


def test_simulate_cuts_a_user_reply_past_the_token_budget(tmp_path: Path) -> None:
    from humanlm.generate.openai import REPLY_CHARS_PER_TOKEN

    scenarios = tmp_path / "s.jsonl"
    scenarios.write_text('{"id": "one", "persona": "A student."}\n')
    out = tmp_path / "sim"
    with (
        ScriptedServer(reply_fn=megabyte_sim, model="player") as user,
        ScriptedServer(reply_fn=lambda r: Reply(content="Sure."), model="bot") as bot,
    ):
        done = run_cli(
            "simulate", "--user", f"openai:player@{user.base_url}",
            "--assistant", f"openai:bot@{bot.base_url}", "--scenarios", str(scenarios),
            "--max-turns", "1", "--max-new-tokens", "32", "--out", str(out),
            cwd=tmp_path,
        )  # fmt: skip
        asked = len(user.chat_requests)
    assert done.returncode == 0, done.stderr
    assert_clean(done, tmp_path)
    [record] = read_out(out / "conversations.jsonl")
    assert record["usage"]["user_replies_cut"] == asked >= 1
    sent = [m["content"] for m in record["messages"] if m["role"] == "user"]
    assert all(len(text) <= 32 * REPLY_CHARS_PER_TOKEN for text in sent)
    assert (
        f"simulated user replies past the token budget, cut at its character cap): {asked}"
        in (out / "report.md").read_text()
    )


# --- data build --llm and data personas ------------------------------------------------------


def healthy_persona(request: RecordedRequest) -> Reply:
    return Reply(content=persona_json())


PERSONA_FAULTS: dict[str, tuple[ReplyFn | None, int]] = {
    "refused": (None, 1),
    "401": (lambda r: Reply(status=401), 2),
    "429_retry_after": (
        first_n_then(2, Reply(status=429, headers={"Retry-After": "0.2"}), healthy_persona),
        0,
    ),
    "500": (lambda r: Reply(status=500), 1),
    "hang_60s": (lambda r: Reply(content="{}", delay_s=60), 1),
    "malformed_json": (lambda r: Reply(content='{"demographics": {'), 1),
}


def split_rows(folder: Path) -> int:
    return sum(pq.read_table(folder / f"{s}.parquet").num_rows for s in ("train", "val", "test"))


@pytest.mark.parametrize("fault", list(PERSONA_FAULTS))
def test_data_build_llm_under_fault_then_personas_rerun(
    tmp_path: Path, fault: str, rerun: Rerun
) -> None:
    reply_fn, code = PERSONA_FAULTS[fault]
    source = write_items(tmp_path / "raw.jsonl", forum_items(threads=6))
    out = tmp_path / "built"
    with ScriptedServer(reply_fn=reply_fn or healthy_persona) as server:
        url = server.base_url if reply_fn is not None else closed_port_url()
        build = ["data", "build", "-i", str(source), "-o", str(out), "--ratios", "80/10/10"]
        done = run_cli(*build, "--llm", f"openai:p@{url}", *fast(fault), cwd=tmp_path)
        assert done.returncode == code, done.stderr
        assert_clean(done, tmp_path)
        if code:
            line = one_error_line(done)
            assert "humanlm data personas" in line or "run the same command again" in line
            assert split_rows(out) == 0  # no persona-less row in an ordinary split
            assert pq.read_table(out / "persona_failed.parquet").num_rows > 0  # nothing lost
            prepare = ["data", "prepare", "-i", str(out), "-d", "generic"]
            refused = rerun(*prepare, "-o", str(tmp_path / "p"), cwd=tmp_path)
            assert refused.returncode == 2 and "no rows to prepare" in one_error_line(refused)
            waiting = rerun("data", "validate", str(out), cwd=tmp_path)  # issue 24: not "fine"
            assert waiting.returncode == 1 and "wait for personas" in one_error_line(waiting)
        server.reply_fn = healthy_persona
        again = rerun(
            "data",
            "personas",
            "-i",
            str(out),
            "--llm",
            f"openai:p@{server.base_url}",
            *FAST,
            cwd=tmp_path,
        )
    assert again.returncode == 0, again.stderr
    assert_clean(again, tmp_path)
    assert split_rows(out) > 0 and not (out / "persona_failed.parquet").exists()
    assert rerun("data", "validate", str(out), cwd=tmp_path).returncode == 0
    info = json.loads((out / "build_summary.json").read_text())
    assert info["personas"]["failed"] == []
    assert len(info["personas"]["ledger"]["invocations"]) == (1 if code == 2 else 2)


def persona_users(folder: Path) -> list[str]:
    return [
        u
        for s in ("train", "val", "test")
        for u in pq.read_table(folder / f"{s}.parquet").column("user_id").to_pylist()
    ]


def assert_personas_healed(out: Path, kept: bytes, rows: int) -> None:
    log = assert_healed_log(out / "personas.jsonl", kept, "user_id", 5)  # five forum users
    assert {r["user_id"] for r in log} == set(persona_users(out))
    assert split_rows(out) == rows and not (out / "persona_failed.parquet").exists()
    personas = [
        p
        for s in ("train", "val", "test")
        for p in pq.read_table(out / f"{s}.parquet").column("persona").to_pylist()
    ]
    assert all(p == persona_json() for p in personas)


def kill_personas_then_rerun(
    args: list[str], *, out: Path, tmp_path: Path, rerun: Rerun, when_killed: Callable[[], int]
) -> None:
    """Kill a persona-writing command once 2 of 5 personas are logged, check the folder with
    ``when_killed`` (it returns the rows the healed splits must hold), rerun it healthy."""
    with ScriptedServer(reply_fn=slowed(healthy_persona, 0.5)) as server:
        kept = kill_once_written(
            *args,
            "--llm",
            f"openai:p@{server.base_url}",
            cwd=tmp_path,
            log=out / "personas.jsonl",
            records=2,
        )
    done = len(read_out(out / "personas.jsonl"))
    assert 2 <= done < 5
    rows = when_killed()
    with ScriptedServer(reply_fn=healthy_persona) as server:
        again = rerun(*args, "--llm", f"openai:p@{server.base_url}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_clean(again, tmp_path)
    assert len(server.chat_requests) == 5 - done  # only the users without a persona
    assert_personas_healed(out, kept, rows)


def test_data_personas_killed_mid_run_then_rerun(tmp_path: Path, rerun: Rerun) -> None:
    from humanlm.ingest.dataset import run_build

    source = write_items(tmp_path / "raw.jsonl", forum_items(threads=6))
    out = tmp_path / "built"
    run_build(inputs=[source], out_dir=out, ratios=(0.8, 0.1, 0.1), fixed_persona="A user.")
    rows = split_rows(out)

    def when_killed() -> int:
        assert split_rows(out) == rows  # the killed run replaced nothing
        return rows

    args = ["data", "personas", "-i", str(out), *FAST, "--concurrency", "1"]
    kill_personas_then_rerun(args, out=out, tmp_path=tmp_path, rerun=rerun, when_killed=when_killed)


def test_data_build_llm_killed_mid_run_then_rerun(tmp_path: Path, rerun: Rerun) -> None:
    source = write_items(tmp_path / "raw.jsonl", forum_items(threads=6))
    out = tmp_path / "built"

    def when_killed() -> int:
        assert split_rows(out) == 0  # no persona-less row in an ordinary split
        held = pq.read_table(out / "persona_failed.parquet").num_rows
        assert held > 0  # every row is kept, held back until it has its persona
        return held

    build = ["data", "build", "-i", str(source), "-o", str(out), "--ratios", "80/10/10", *FAST]
    build += ["--concurrency", "1"]
    kill_personas_then_rerun(
        build, out=out, tmp_path=tmp_path, rerun=rerun, when_killed=when_killed
    )


# --- data traces -----------------------------------------------------------------------------


def healthy_trace(request: RecordedRequest) -> Reply:
    return Reply(content=good_trace(request))


TRACE_FAULTS: dict[str, tuple[ReplyFn | None, int]] = {
    "refused": (None, 1),
    "429_retry_after": (
        first_n_then(2, Reply(status=429, headers={"Retry-After": "0.2"}), healthy_trace),
        0,
    ),
    "401": (lambda r: Reply(status=401), 2),
    "500": (lambda r: Reply(status=500), 1),
    "hang_60s": (lambda r: Reply(content="{}", delay_s=60), 1),
    "malformed_json": (lambda r: Reply(content='{"trace": '), 1),
}


def trace_column(folder: Path) -> list[str]:
    return [
        t
        for s in ("train", "test")
        for t in pq.read_table(folder / f"{s}.parquet").column("trace").to_pylist()
    ]


@pytest.mark.parametrize("fault", list(TRACE_FAULTS))
def test_data_traces_under_fault_then_rerun(
    tmp_path: Path, prepared: Path, fault: str, rerun: Rerun
) -> None:
    reply_fn, code = TRACE_FAULTS[fault]
    out = tmp_path / "think"
    with ScriptedServer(reply_fn=reply_fn or healthy_trace) as server:
        url = server.base_url if reply_fn is not None else closed_port_url()
        args = ["data", "traces", "-i", str(prepared), "-o", str(out)]
        # Every example in flight at once: a hang costs one deadline (and its retry), not two.
        many = ["--concurrency", "16"]
        done = run_cli(*args, "--llm", f"openai:t@{url}", *fast(fault), *many, cwd=tmp_path)
        assert done.returncode == code, done.stderr
        assert_clean(done, tmp_path)
        if code:
            one_error_line(done)
        else:  # retried after the Retry-After wait: every trace is there
            assert len(server.chat_requests) == 9 + 2  # two 429s, each asked again
            assert len([t for t in trace_column(out) if t.strip()]) == 9
        server.reply_fn = healthy_trace
        before = len(server.chat_requests)
        again = rerun(*args, "--llm", f"openai:t@{server.base_url}", *FAST, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_clean(again, tmp_path)
    if not code:
        assert len(server.chat_requests) == before  # nothing left to ask
    assert len(trace_column(out)) == 9 and all(t.strip() for t in trace_column(out))
    summary = json.loads((out / "traces_summary.json").read_text())
    assert summary["failed"] == {}
    assert len(summary["ledger"]["invocations"]) == (1 if code == 2 else 2)


def test_data_traces_killed_mid_run_then_rerun(
    tmp_path: Path, prepared: Path, rerun: Rerun
) -> None:
    out = tmp_path / "think"
    log = out / "traces.jsonl"
    args = ["data", "traces", "-i", str(prepared), "-o", str(out), *FAST, "--concurrency", "1"]
    with ScriptedServer(reply_fn=slowed(healthy_trace, 0.3)) as server:
        spec = f"openai:t@{server.base_url}"
        kept = kill_once_written(*args, "--llm", spec, cwd=tmp_path, log=log, records=3)
    done = len(read_out(log))
    assert 3 <= done < 9 and not (out / "train.parquet").exists()
    with ScriptedServer(reply_fn=healthy_trace) as server:
        again = rerun(*args, "--llm", f"openai:t@{server.base_url}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_clean(again, tmp_path)
    assert len(server.chat_requests) == 9 - done  # only the examples without a trace
    records = assert_healed_log(log, kept, "example_id", 9)
    assert sorted(trace_column(out)) == sorted(r["trace"] for r in records)
    summary = json.loads((out / "traces_summary.json").read_text())
    assert summary["failed"] == {}
    assert sum(s["cached"] for s in summary["splits"].values()) == done


# --- bad files and paths: one line each ------------------------------------------------------


def test_bad_files_and_paths_get_one_line(tmp_path: Path, rerun: Rerun) -> None:
    """Each in this process: no service is involved, and the one line is what is checked."""
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"completion": "caf\xe9"}\n')
    empty_parquet = tmp_path / "train.parquet"
    empty_parquet.write_bytes(b"")
    empty_jsonl = tmp_path / "empty.jsonl"
    empty_jsonl.write_text("")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        (["data", "validate", str(bad)], "not UTF-8 text (byte 0xe9 at byte offset 19)"),
        (
            ["data", "prepare", "-i", str(bad), "-d", "generic", "-o", str(tmp_path / "o1")],
            "offset 19",
        ),
        (["data", "validate", str(empty_parquet)], "an empty file (0 bytes)"),
        (
            ["data", "prepare", "-i", str(empty_jsonl), "-d", "generic", "-o", str(tmp_path / "o")],
            "no rows",
        ),
        (
            ["data", "prepare", "-i", str(empty_jsonl), "-d", "generic", "-o", str(a_file / "s")],
            "is a file, not a folder",
        ),
        (
            ["judge", "-i", str(bad), "-o", str(tmp_path), "--judge", "embedding:minilm"],
            "is a folder",
        ),
        (
            [
                "eval",
                "--judge",
                CLOSED_JUDGE,
                "--model",
                "openai:m@http://127.0.0.1:9/v1",
                "--out",
                str(a_file),
            ],
            "is a file; name a folder",
        ),
    ]
    for args, message in cases:
        done = rerun(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert message in one_error_line(done), (args, done.stderr)
        assert_clean(done, tmp_path)


def test_validate_exits_1_on_problems(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "not a list", "completion": 3}) + "\n")
    done = run_cli("data", "validate", str(rows), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "4 problems in 1 rows" in done.stdout
    assert_clean(done, tmp_path)


# --- hostile files and paths (issue 24): one line, exit 2, nothing half-written ---------------


def surrogate_rows(path: Path) -> Path:
    """Two rows: the second holds a lone surrogate escape, as a cut emoji leaves in a dump."""
    good = {
        "prompt": [{"role": "user", "name": "op", "content": "Should I move abroad?"}],
        "completion": "Go for it.",
        "user_id": "u1",
        "post_id": "p1",
        "dataset": "generic",
        # judge fields, so the same file reaches the judge's own row checks
        "example_id": "ex0",
        "state": "stance",
        "context": [{"name": "op", "content": "Should I move abroad?"}],
        "ground_truth": "Go for it.",
        "candidates": ["Stay home."],
    }
    cut = json.dumps({**good, "example_id": "ex1"}).replace("Go for it.", "Go for it \\ud83d")
    path.write_text(json.dumps(good) + "\n" + cut + "\n")
    return path


def broken_model(folder: Path) -> Path:
    """A model folder whose model.safetensors was cut short (half its bytes)."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir()
    (folder / "config.json").write_text("{}")
    weights = folder / "model.safetensors"
    save_file({"w": np.zeros((32, 32), dtype=np.float32)}, str(weights))
    weights.write_bytes(weights.read_bytes()[:3000])
    return folder


def test_hostile_files_and_paths_get_one_line(tmp_path: Path, rerun: Rerun) -> None:
    """Each in this process: no service answers, and each must stop before any work."""
    from humanlm.demo import demo_config_path

    rows = surrogate_rows(tmp_path / "rows.jsonl")
    empty_parquet = tmp_path / "empty" / "train.parquet"
    empty_parquet.parent.mkdir()
    empty_parquet.write_bytes(b"")
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone" / "data")
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.jsonl").write_text(rows.read_text().splitlines()[0] + "\n")
    model = broken_model(tmp_path / "model")
    sim = "openai:m@http://127.0.0.1:9/v1"
    surrogate = "row 1, field 'completion': line 2: the text holds a lone surrogate escape"
    cases = [
        (["data", "validate", str(rows)], surrogate),
        (["data", "prepare", "-i", str(rows), "-d", "generic", "-o", str(tmp_path / "p")], surrogate),
        (["judge", "-i", str(rows), "-o", str(tmp_path / "j.jsonl"), "--judge", sim], surrogate),
        (["eval", "--judge", CLOSED_JUDGE, "--model", sim, "--data", str(rows), "--out", str(tmp_path / "e")], surrogate),
        (
            ["data", "prepare", "-i", str(empty_parquet.parent), "-d", "generic", "-o", str(tmp_path / "p0")],
            "train.parquet: an empty file (0 bytes)",
        ),
        (["data", "validate", str(tmp_path / "loop_a")], "loop_a is a symbolic link loop"),
        (["data", "prepare", "-i", str(tmp_path / "dangling"), "-d", "generic", "-o", str(tmp_path / "p1")], "which does not exist"),
        (["data", "prepare", "-i", str(raw), "-d", "generic", "-o", str(tmp_path / "loop_a")], "does not exist (or is a loop)"),
        (["judge", "-i", str(rows), "-o", str(tmp_path / "loop_a"), "--judge", sim], "symbolic link loop"),
        (["judge", "-i", str(rows), "-o", str(fifo), "--judge", sim], "not a regular file"),
        (["eval", "--judge", CLOSED_JUDGE, "--model", sim, "--data", "demo", "--out", str(tmp_path / "dangling")], "which does not exist"),
        (["data", "prepare", "-i", str(raw), "-d", "generic", "-o", str(raw)], "is the input folder"),
        (["data", "prepare", "-i", str(raw), "-d", "generic", "-o", str(raw / "out")], "lies inside the input folder"),
        (["data", "prepare", "-i", str(raw / "train.jsonl"), "-d", "generic", "-o", str(raw)], "second file of that split"),
        (["data", "build", "-i", str(raw), "-o", str(raw / "built"), "--no-personas"], "lies inside the input folder"),
        (["eval", "--judge", CLOSED_JUDGE, "--model", f"hf:{model}", "--data", "demo", "--out", str(tmp_path / "e2")], "model.safetensors is cut short"),
        (["serve", "--model", f"hf:{model}", "--port", "9"], "model.safetensors is cut short"),
        (["simulate", "--user", f"hf:{model}", "--assistant", sim, "--data", str(tmp_path), "--out", str(tmp_path / "s")], "model.safetensors is cut short"),
        (["train", "--config", str(demo_config_path()), f"model.path={model}", f"output_root={tmp_path / 'runs'}"], "model.safetensors is cut short"),
    ]  # fmt: skip
    for args, message in cases:
        done = rerun(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert message in one_error_line(done), (args, done.stderr)
        assert_clean(done, tmp_path)
    assert sorted(p.name for p in raw.iterdir()) == ["train.jsonl"]  # nothing written into it
    assert not (tmp_path / "p").exists() and not (tmp_path / "runs").exists()
    assert (tmp_path / "loop_a").is_symlink() and fifo.is_fifo()  # neither replaced


def test_full_disk_while_logging_personas_then_rerun(tmp_path: Path, rerun: Rerun) -> None:
    """A real ENOSPC: the persona log is a link to /dev/full, where every write fails."""
    from humanlm.ingest.dataset import run_build

    if not Path("/dev/full").is_char_device():
        pytest.skip("no /dev/full on this machine")
    source = write_items(tmp_path / "raw.jsonl", forum_items(threads=6))
    out = tmp_path / "built"
    run_build(inputs=[source], out_dir=out, ratios=(0.8, 0.1, 0.1), fixed_persona="A user.")
    rows = split_rows(out)
    log = out / "personas.jsonl"
    log.symlink_to("/dev/full")
    with ScriptedServer(reply_fn=healthy_persona) as server:
        args = ["data", "personas", "-i", str(out), "--llm", f"openai:p@{server.base_url}", *FAST]
        full = rerun(*args, cwd=tmp_path)
        assert full.returncode == 2, full.stderr
        assert_clean(full, tmp_path)
        line = one_error_line(full)
        assert "no space left on the device" in line and "personas.jsonl" in line
        assert "bytes of finished records are kept" in line and "run the same command" in line
        assert split_rows(out) == rows and Path("/dev/full").is_char_device()  # nothing replaced
        log.unlink()  # space again
        again = rerun(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_clean(again, tmp_path)
    assert len(read_out(log)) == 5 and split_rows(out) == rows  # five forum users, every row


def test_full_file_system_while_preparing(tmp_path: Path) -> None:
    """A real full file system (a 16 KiB tmpfs in a user namespace): one line, exit 2, no
    temporary file left; where user namespaces are not allowed, this case is skipped."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("no unshare on this machine")
    out = tmp_path / "small"
    out.mkdir()
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=16k tmpfs {out}"],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip("user namespaces are not allowed here")
    from humanlm.data.resolve import demo_data_dir

    source = demo_data_dir()
    cli = f"{sys.executable} -m humanlm.cli.main data prepare -i {source} -d auto -o {out}"
    script = f"mount -t tmpfs -o size=16k tmpfs {out} && {cli}; echo rc=$?; ls -A {out}"
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
    )
    assert "rc=2" in done.stdout, done.stdout + done.stderr
    assert_clean(done, tmp_path)
    line = one_error_line(done)
    assert "no space left on the device" in line and str(out) in line and "bytes written" in line
    assert done.stdout.split("rc=2")[1].split() == []  # nothing left in the full folder
