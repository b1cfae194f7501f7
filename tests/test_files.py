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
