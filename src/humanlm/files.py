"""Atomic file writes (a reader never sees a half-written file, a failure leaves nothing behind)
and JSON-lines logs that a killed writer may have cut short."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "append_jsonl",
    "atomic_path",
    "read_jsonl",
    "write_json",
    "write_jsonl",
    "write_text",
]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds.

    Example:
        >>> with atomic_path("out/train.parquet") as tmp:  # doctest: +SKIP
        ...     pq.write_table(table, tmp)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON lines atomically."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a JSON-lines file that a killed writer may have left half-written.

    A line that does not parse (the tail of a run killed mid-write) is skipped with a warning;
    a missing file has no records.
    """
    log = Path(path)
    records: list[dict[str, Any]] = []
    if not log.is_file():
        return records
    with log.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s line %d is incomplete; it is left out", log, number)
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def append_jsonl(log: IO[str], record: dict[str, Any]) -> None:
    """Append one record as a JSON line and push it to disk before the next one is written."""
    log.write(json.dumps(record, ensure_ascii=False) + "\n")
    log.flush()
    os.fsync(log.fileno())
