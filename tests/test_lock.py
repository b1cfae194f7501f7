"""One writer per output folder: every writing command, run as a user runs it, stops with one line
(exit 2) naming the run that holds its output, takes over the lock of a run that is gone, and
leaves no lock behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from humanlm.config import load_config, to_dict
from humanlm.demo import demo_config_path
from humanlm.lock import lock_path, output_lock
from humanlm.testing import ScriptedServer
from humanlm.testing.judge_replies import judge_reply_fn
from tests.ingest.test_dataset import forum_items, write_items

SRC = Path(__file__).resolve().parents[1] / "src"
CLOSED = "http://127.0.0.1:9/v1"  # nothing listens there: no call may be needed


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OPENAI_API_KEY": "sk-test", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "humanlm.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def judge_input(path: Path) -> Path:
    rows = [
        {
            "example_id": f"ex{i}",
            "state": "stance",
            "context": [{"name": "op", "content": f"Post {i}: should I move abroad?"}],
            "ground_truth": f"Go for it, number {i}.",
            "candidates": [f"Stay home {i}.", f"Go for it {i}."],
        }
        for i in range(2)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def resumable_run(folder: Path) -> Path:
    """A run folder ``train --resume`` accepts: its config and a (bare) checkpoint."""
    cfg = load_config(demo_config_path(), ["mode=sft"])
    (folder / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (folder / "checkpoints" / "checkpoint-1" / "trainer_state.json").write_text("{}")
    (folder / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg)))
    return folder


def prepared_input(folder: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from humanlm.data.prepare import PREPARED_SCHEMA
    from tests.enrich.test_traces import example

    folder.mkdir()
    rows = [example("train", n) for n in range(2)]
    pq.write_table(pa.Table.from_pylist(rows, schema=PREPARED_SCHEMA), folder / "train.parquet")
    return folder


# command -> (its arguments for the output ``out`` in ``tmp``, the output is a file)
Args = Callable[[Path, Path], list[str]]
COMMANDS: dict[str, tuple[Args, bool]] = {
    "judge": (
        lambda tmp, out: [
            "judge", "-i", str(judge_input(tmp / "in.jsonl")), "-o", str(out),
            "--judge", f"openai:j@{CLOSED}", "--no-progress",
        ],
        True,
    ),
    "eval": (
        lambda tmp, out: [
            "eval", "--model", f"openai:sim@{CLOSED}", "--data", "demo", "--limit", "2",
            "--judge", f"openai:judge@{CLOSED}", "--out", str(out), "embedding=false",
            "progress=false",
        ],
        False,
    ),
    "data build": (
        lambda tmp, out: [
            "data", "build", "-i", str(write_items(tmp / "raw.jsonl", forum_items(threads=4))),
            "-o", str(out), "--fixed-persona", "A user.",
        ],
        False,
    ),
    "data personas": (
        lambda tmp, out: ["data", "personas", "-i", str(out), "--fixed", "A user."],
        False,
    ),
    "data traces": (
        lambda tmp, out: [
            "data", "traces", "-i", str(prepared_input(tmp / "prepared")), "-o", str(out),
            "--llm", f"openai:t@{CLOSED}",
        ],
        False,
    ),
    "simulate": (
        lambda tmp, out: [
            "simulate", "--user", f"openai:u@{CLOSED}", "--assistant", f"openai:a@{CLOSED}",
            "--scenarios", str(_scenarios(tmp)), "--out", str(out),
        ],
        False,
    ),
    "train": (lambda tmp, out: ["train", "--resume", str(resumable_run(out))], False),
}  # fmt: skip


def _scenarios(tmp: Path) -> Path:
    path = tmp / "scenarios.jsonl"
    path.write_text('{"id": "one", "persona": "A student."}\n')
    return path


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_second_run_into_a_held_output_stops_naming_the_holder(command, tmp_path):
    # issue 24: two runs into one output both ran, making every call twice.
    args, is_file = COMMANDS[command]
    out = tmp_path / ("out.jsonl" if is_file else "out")
    if not is_file:
        out.mkdir()
    with output_lock(out, command=command, file=is_file) as lock:
        argv = args(tmp_path, out)
        listed = sorted(tmp_path.rglob("*"))
        done = run_cli(*argv, cwd=tmp_path)
        assert lock.is_file()  # the holder's lock is left alone
        assert sorted(tmp_path.rglob("*")) == listed  # nothing written, nothing removed
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    holder = f"is in use by humanlm {command} (pid {os.getpid()} on host {socket.gethostname()}"
    assert holder in line and str(out) in line
    assert not lock.exists()  # the holder removed its lock on leaving


def test_the_lock_of_a_run_that_is_gone_is_taken_over_with_a_warning(tmp_path):
    # issue 24: a killed run's lock must not block the folder for ever.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "scored.jsonl"
    stale = {"pid": gone.pid, "host": socket.gethostname(), "command": "humanlm judge"}
    lock_path(out, file=True).write_text(json.dumps({**stale, "started": "earlier"}))
    with ScriptedServer(reply_fn=judge_reply_fn(lambda cand, real: 0.5)) as server:
        args = ["-i", str(judge_input(tmp_path / "in.jsonl")), "-o", str(out)]
        done = run_cli("judge", *args, "--judge", f"openai:j@{server.base_url}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"taking over the lock of humanlm judge (pid {gone.pid}" in done.stderr
    assert len(out.read_text().splitlines()) == 2
    assert not lock_path(out, file=True).exists()


def test_a_live_holder_on_this_host_is_refused_even_without_a_file_lock(tmp_path):
    # issue 24: a lock file naming a running process (written by hand, or on a file system
    # without locks) is not taken over.
    out = tmp_path / "out"
    out.mkdir()
    alive = {"pid": os.getppid(), "host": socket.gethostname(), "command": "humanlm eval"}
    lock_path(out).write_text(json.dumps({**alive, "started": "earlier"}))
    args, _ = COMMANDS["data build"]
    done = run_cli(*args(tmp_path, out), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"in use by humanlm eval (pid {os.getppid()}" in done.stderr
    assert [p.name for p in out.iterdir()] == [".humanlm.lock"]  # nothing built
