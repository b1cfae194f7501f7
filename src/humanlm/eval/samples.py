"""``samples.jsonl``: one record per example, appended and flushed as each example finishes.

A run that is interrupted keeps every record written so far; a half-written last line (the
process died mid-write) is cut off before appending resumes. When an example appears more than
once (it was evaluated again after its simulator call failed), its last record counts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from humanlm.files import append_jsonl, open_append, read_jsonl

__all__ = ["SAMPLES_FILE", "SamplesFile", "read_samples"]


SAMPLES_FILE = "samples.jsonl"


def read_samples(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The last record of each example in a samples file (``{}`` when it does not exist).

    Lines that are not JSON objects (a line cut by a crash) are skipped with a warning.
    """
    return {str(r["example_id"]): r for r in read_jsonl(path) if "example_id" in r}


class SamplesFile:
    """Append-only writer of ``samples.jsonl`` (use as a context manager).

    Example:
        >>> with SamplesFile(run_dir / SAMPLES_FILE) as samples:  # doctest: +SKIP
        ...     samples.append(record)
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def __enter__(self) -> SamplesFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open_append(self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as a whole line to the operating system (a full disk: one line)."""
        if self._fh is None:
            raise RuntimeError("SamplesFile is not open; use it in a with block")
        append_jsonl(self._fh, record, sync=False)
