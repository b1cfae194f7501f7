"""Atomic writes and output-path checks in ``humanlm.files``."""

from __future__ import annotations

import gzip
import os
import stat
import tempfile
import time

import pytest

from humanlm.errors import ConfigError, DataError
from humanlm.files import (
    check_output_dir,
    check_output_file,
    decode_utf8,
    iter_jsonl,
    not_utf8_error,
    read_jsonl,
    write_text,
)


def test_atomic_writes_keep_the_umask_mode(tmp_path):
    path = tmp_path / "out.txt"
    write_text(path, "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    stale = tmp_path / ".out.txt.abc123.tmp"
    stale.write_text("half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / ".out.txt.def456.tmp"  # may belong to a writer still running
    fresh.write_text("busy")
    write_text(tmp_path / "out.txt", "done")
    assert not stale.exists() and fresh.exists()


def test_output_file_checks(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a folder"):
        check_output_file(tmp_path / "folder")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output_file(tmp_path / "file" / "out.jsonl")
    assert check_output_file(tmp_path / "new" / "deeper" / "out.jsonl").name == "out.jsonl"
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_output_dir_checks(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file; name a folder"):
        check_output_dir(tmp_path / "file")

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # as on a read-only folder
    with pytest.raises(ConfigError, match="cannot write in .* \\(Permission denied\\)"):
        check_output_dir(tmp_path / "run")


def test_non_utf8_is_named_with_its_byte_offset(tmp_path):
    with pytest.raises(DataError, match="byte 0xff at byte offset 7"):
        decode_utf8(b"abc\xff", file="x.jsonl", offset=4)
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"a" * (1 << 20) + b"\xc3" + b"(")  # bad sequence across a chunk border
    assert "byte offset 1048576" in str(not_utf8_error(path))


def test_a_log_cut_by_a_killed_writer_keeps_its_whole_records(tmp_path, caplog):
    log = tmp_path / "log.jsonl"
    assert read_jsonl(log) == []  # no file yet
    log.write_bytes(b'{"a": 1}\n\n[2]\n{"a": 3}\n{"a": "\xc3')  # cut inside a character
    assert read_jsonl(log) == [{"a": 1}, {"a": 3}]
    assert "line 5 is incomplete" in caplog.text
    assert list(iter_jsonl(log))[:2] == [(0, {"a": 1}), (2, [2])]


def test_strict_input_names_the_file_and_row(tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b'{"a": 1}\n\n{"a": \n')
    with pytest.raises(DataError, match=r"rows.jsonl.gz, row 2: line 3: not valid JSON"):
        list(iter_jsonl(path, strict=True, opener=gzip.open))
    path.write_bytes(b'{"a": 1}\n"\xff"\n')
    with pytest.raises(DataError, match="byte 0xff at byte offset 10"):
        list(iter_jsonl(path, strict=True))


def test_open_append_cuts_a_torn_last_line(tmp_path) -> None:
    from humanlm.files import append_jsonl, open_append, read_jsonl

    log = tmp_path / "log.jsonl"
    log.write_text('{"id": 1}\n{"id": 2, "tr', encoding="utf-8")  # killed mid-line
    with open_append(log) as fh:
        append_jsonl(fh, {"id": 3})
    assert log.read_text(encoding="utf-8") == '{"id": 1}\n{"id": 3}\n'
    assert [r["id"] for r in read_jsonl(log)] == [1, 3]


@pytest.fixture
def umask_027():
    """Files created meanwhile (also by child processes) get 0640."""
    before = os.umask(0o027)
    yield
    os.umask(before)


def _judge(out, tmp_path, judge_url):
    from tests.test_lock import judge_input, run_cli

    src = judge_input(tmp_path / "in.jsonl")
    return run_cli(
        "judge", "-i", str(src), "-o", str(out), "--judge", f"openai:j@{judge_url}",
        "--max-retries", "0", "--timeout", "5", "--no-progress", cwd=tmp_path,
    )  # fmt: skip


def test_judge_writes_through_a_symlinked_out_with_the_umask_mode(tmp_path, umask_027):
    # issue 24: `judge -o LINK` replaced the link with a file of its own.
    from humanlm.testing import ScriptedServer
    from humanlm.testing.judge_replies import judge_reply_fn

    store = tmp_path / "store"
    store.mkdir()
    (store / "scored.jsonl").write_text("")
    links = {"kept": store / "scored.jsonl", "dangling": store / "new.jsonl"}
    for name, target in links.items():
        (tmp_path / f"{name}.jsonl").symlink_to(target)
    with ScriptedServer(reply_fn=judge_reply_fn(lambda cand, real: 0.5)) as server:
        for name, target in links.items():
            done = _judge(tmp_path / f"{name}.jsonl", tmp_path, server.base_url)
            assert done.returncode == 0, done.stderr
            assert (tmp_path / f"{name}.jsonl").readlink() == target  # still the same link
            assert len(target.read_text().splitlines()) == 2  # written where it points
    written = [*links.values(), tmp_path / "judge_ledger.json"]
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in written} == {
        p.name: 0o640 for p in written
    }


def test_a_symlink_loop_as_out_is_refused_in_one_line(tmp_path):
    # issue 24: a symlink loop as `-o` was replaced by a file (or crashed).
    (tmp_path / "a.jsonl").symlink_to(tmp_path / "b.jsonl")
    (tmp_path / "b.jsonl").symlink_to(tmp_path / "a.jsonl")
    done = _judge(tmp_path / "a.jsonl", tmp_path, "http://127.0.0.1:9/v1")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert "a.jsonl is a symbolic link loop" in line
    assert (tmp_path / "a.jsonl").is_symlink() and (tmp_path / "b.jsonl").is_symlink()
