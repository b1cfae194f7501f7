"""The verdict cache: reruns hit it, failures are not stored, several processes can share it and a
killed writer leaves it intact."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from humanlm.judge import LLMCache
from humanlm.llm.cache import cache_key
from humanlm.testing import faults
from humanlm.testing.judge_replies import group_reply, judge_reply_fn
from tests.judge.conftest import CONTEXT, TRUTH, run


def judge_once(judge, state="stance", **kw):
    return run(
        judge.judge_group(
            context=CONTEXT, ground_truth=TRUTH, state=state, candidates=["a", "b"], **kw
        )
    )


def test_rerun_hits_the_cache(server, make_judge, tmp_path: Path) -> None:
    server.reply_fn = judge_reply_fn(lambda c, r: 0.25 if c == "a" else 0.75)
    path = tmp_path / "cache.sqlite"
    first = judge_once(make_judge(cache=path))
    again = make_judge(cache=path)
    second = judge_once(again)
    assert second.scores == first.scores == [0.25, 0.75]
    assert second.cached and not first.cached and second.calls == 0
    assert again.ledger.cache_hits == 1 and again.ledger.calls == 0
    assert second.key_points == first.key_points and second.verdicts[0].raw is not None
    assert len(server.chat_requests) == 1


def test_cache_bypass_and_key_parts(server, make_judge, tmp_path: Path) -> None:
    server.reply_fn = judge_reply_fn()
    path = tmp_path / "cache.sqlite"
    judge_once(make_judge(cache=path))
    judge_once(make_judge(cache=path), use_cache=False)  # --no-cache
    judge_once(make_judge(cache=path, temperature=0.5))  # other parameters
    judge_once(make_judge(cache=path), state="emotion")  # other state
    assert len(server.chat_requests) == 4
    judge_once(make_judge(cache=path, temperature=0.5))
    assert len(server.chat_requests) == 4


def test_failures_are_not_cached(server, make_judge, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    server.enqueue(faults.empty())
    assert judge_once(make_judge(cache=path, max_retries=0)).scores == [None, None]
    server.enqueue(group_reply([0.1, 0.2]))
    assert judge_once(make_judge(cache=path)).scores == [0.1, 0.2]
    assert len(LLMCache(path)) == 1


_WRITER = textwrap.dedent(
    """
    import sys
    from humanlm.llm.cache import LLMCache
    cache = LLMCache(sys.argv[1])
    tag, count = sys.argv[2], int(sys.argv[3])
    i = 0
    while count < 0 or i < count:
        cache.put(f"{tag}-{i}", {"scores": {"1": i / 1e6}, "pad": "x" * 2000})
        i += 1
    """
)


def _writer(path: Path, tag: str, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tag, str(count)])


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    LLMCache(path).close()
    procs = [_writer(path, tag, 300) for tag in ("p", "q")]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    cache = LLMCache(path)
    assert len(cache) == 600
    assert cache.get("q-299")["scores"] == {"1": 299 / 1e6}
    assert cache.get("p-0") is not None


def test_killed_writer_leaves_a_usable_cache(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    LLMCache(path).close()
    proc = _writer(path, "k", -1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(LLMCache(path)) < 50:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cache = LLMCache(path)
    stored = len(cache)
    assert stored >= 50 and cache.get("k-0") is not None
    cache.put("after-kill", {"scores": {}})
    assert len(cache) == stored + 1


def test_cache_key_ignores_key_order() -> None:
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_the_same_model_on_another_server_shares_the_cache(tmp_path: Path) -> None:
    from humanlm.judge import JudgeConfig, build_judge
    from humanlm.testing import ScriptedServer

    path = tmp_path / "cache.sqlite"
    with ScriptedServer(reply_fn=judge_reply_fn()) as first:
        judge_once(build_judge(JudgeConfig(f"openai:judge-model@{first.base_url}"), cache=path))
    with ScriptedServer(reply_fn=judge_reply_fn()) as second:
        again = build_judge(JudgeConfig(f"openai:judge-model@{second.base_url}"), cache=path)
        assert judge_once(again).cached and second.chat_requests == []


def test_an_unreadable_entry_is_judged_again(server, make_judge, tmp_path: Path) -> None:
    server.reply_fn = judge_reply_fn()
    path = tmp_path / "cache.sqlite"
    judge_once(make_judge(cache=path))
    conn = sqlite3.connect(path)
    conn.execute('UPDATE verdicts SET value = \'{"no": "scores"}\'')
    conn.commit()
    assert judge_once(make_judge(cache=path)).is_scored
    assert len(server.chat_requests) == 2


_OPEN_AND_LIST = textwrap.dedent(
    """
    import os, stat, sys
    from humanlm.llm.cache import LLMCache
    cache = LLMCache(sys.argv[1])
    cache.put("k", {"scores": {"1": 0.5}})
    folder = os.path.dirname(sys.argv[1])
    for name in sorted(os.listdir(folder)):  # while open: the -wal and -shm files are there
        print(name, oct(stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)))
    """
)


def _judge_rows() -> str:
    row = {
        "example_id": "ex0",
        "state": "stance",
        "context": [{"name": "op", "content": "Should I move abroad?"}],
        "ground_truth": "Go for it.",
        "candidates": ["Stay home.", "Go for it, really."],
    }
    return json.dumps(row) + "\n"


@pytest.mark.parametrize(
    ("umask", "mode"),
    [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
    ids=["umask022", "umask077", "umask002"],
)
def test_the_cache_files_get_the_umasks_mode(tmp_path: Path, umask: int, mode: int) -> None:
    # issue 24: SQLite created the cache 0644 whatever the umask (0664 expected under 002).
    from humanlm.testing import ScriptedServer

    src = tmp_path / "in.jsonl"
    src.write_text(_judge_rows())
    out = tmp_path / "out" / "scored.jsonl"
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "HF_HUB_OFFLINE": "1"}
    with ScriptedServer(reply_fn=judge_reply_fn()) as server:
        args = ["judge", "-i", str(src), "-o", str(out), "--judge", f"openai:j@{server.base_url}"]
        done = subprocess.run(
            [sys.executable, "-m", "humanlm.cli.main", *args, "--no-progress"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=lambda: os.umask(umask),
        )
    assert done.returncode == 0, done.stderr
    cache = out.parent / "judge_cache.sqlite"
    assert stat.S_IMODE(cache.stat().st_mode) == mode
    assert stat.S_IMODE(out.stat().st_mode) == mode  # the same mode as the other outputs
    folder = tmp_path / "open"
    folder.mkdir()
    listed = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_LIST, str(folder / "c.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(umask),
        check=True,
    ).stdout.split()
    assert dict(zip(listed[::2], listed[1::2], strict=True)) == {
        name: oct(mode) for name in ("c.sqlite", "c.sqlite-shm", "c.sqlite-wal")
    }
