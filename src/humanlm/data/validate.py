"""Check a Humanual-format source and report every problem, by split, row and field.

Run it from the command line (exit status 1 when there are problems, no rows at all, or rows
of a built folder still waiting for personas in ``persona_failed.parquet``; 0 when clean):

    humanlm data validate data/mine
    humanlm data validate snap-stanford/humanual-opinion --dataset reddit

Each row goes through the same `normalize_row` that ``prepare`` uses. Where it finds a problem,
the offending field is set aside and the row is checked again, so one row can report several
problems. Findings that do not stop ``prepare`` (a thread in two splits, val/test users missing
from train, small personas) are listed as notes.

Example:
    >>> report = validate_source("data/mine", dataset="generic")  # doctest: +SKIP
    >>> print(report.describe())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from humanlm.data.load import find_splits, iter_raw_rows
from humanlm.data.persona import MIN_PERSONA_ITEMS, count_persona_items
from humanlm.data.prepare import HELD_ROWS_FILE as HELD_FILE
from humanlm.data.schema import normalize_row
from humanlm.data.sources import resolve_dataset
from humanlm.errors import DataError

__all__ = ["Problem", "ValidationReport", "validate_source"]

logger = logging.getLogger(__name__)

# Stand-ins for a field that failed, so the rest of the row can still be checked.
_STAND_INS: dict[str, Any] = {
    "completion": "x",
    "user_id": "x",
    "post_id": "x",
    "prompt": [],
    "turn_id": None,
    "timestamp": None,
    "metadata": None,
    "persona": None,
    "trace": None,
    "states": None,
    "dataset": None,
}
_TOP_FIELD = re.compile(r"^[a-z_]+")
_NO_DATASET = "__none__"


@dataclass(frozen=True)
class Problem:
    """One problem: where (split, file, row, field) and what."""

    split: str
    file: str
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.split} row {self.row} field '{self.field}': {self.message}"


@dataclass
class ValidationReport:
    """Everything `validate_source` found.

    Attributes:
        source: what was checked.
        rows: rows checked, in total.
        rows_per_split: rows checked per split.
        problems: every problem found (rows that would make ``prepare`` fail).
        notes: findings that do not stop ``prepare``.
        held_rows: rows still waiting for personas in ``held_file``: a built folder's
            ``persona_failed.parquet`` (not a split, so not checked) or that file itself.
        held_file: that file, where there is one.
    """

    source: str
    rows: int = 0
    rows_per_split: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    held_rows: int = 0
    held_file: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def incomplete(self) -> str | None:
        """Why the source is not ready although no row has a problem: no rows at all, or rows
        still waiting for personas; ``None`` when neither."""
        folder = Path(self.held_file or self.source).parent
        wait = (
            f"{self.held_rows:,} rows wait for personas in {self.held_file}; run "
            f"`humanlm data personas --input {folder} --llm SPEC` first"
        )
        if self.rows == 0:
            checked = ", ".join(self.rows_per_split)
            return f"no rows in {self.source} ({checked} checked)" + (
                f"; {wait}" if self.held_rows else ""
            )
        return wait if self.held_rows else None

    @property
    def bad_rows(self) -> int:
        return len({(p.split, p.row) for p in self.problems})

    def describe(self, *, max_problems: int | None = 50) -> str:
        """The report: problems (the first ``max_problems``), counts per field, notes, verdict."""
        per_split = ", ".join(f"{s} {n:,}" for s, n in self.rows_per_split.items())
        lines = [f"checked {self.rows:,} rows of {self.source} ({per_split})"]
        shown = self.problems if max_problems is None else self.problems[:max_problems]
        lines.extend(f"  {p}" for p in shown)
        if len(shown) < len(self.problems):
            lines.append(f"  ... and {len(self.problems) - len(shown):,} more")
        if self.problems:
            by_field = Counter(_TOP_FIELD.match(p.field).group(0) for p in self.problems)  # type: ignore[union-attr]
            lines.append(
                "problems by field: " + ", ".join(f"{f} {n:,}" for f, n in by_field.most_common())
            )
        lines.extend(f"note: {note}" for note in self.notes)
        verdict = (
            f"{len(self.problems):,} problems in {self.bad_rows:,} rows"
            if not self.ok
            else "no rows"
            if self.rows == 0
            else "no problems"
        )
        if self.held_rows:
            verdict += f"; {self.held_rows:,} rows still wait for personas in {HELD_FILE}"
        lines.append(verdict)
        return "\n".join(lines)


def validate_source(
    source: str | Path, *, dataset: str | None = None, split: str | None = None
) -> ValidationReport:
    """Check every row of every split of ``source``.

    Args:
        source: a file, a folder of split files, a hub repo id or a dataset id.
        dataset: our dataset id; ``None`` reads each row's ``dataset`` column and takes
            ``generic`` for rows without one.
        split: for a file, the split it holds; for a folder or the hub, only this split.

    Raises:
        DataError: the source cannot be found or read at all (a missing file, a bad extension,
            a hub failure); problems inside rows are reported, not raised.
    """
    dataset_id = resolve_dataset(dataset) if dataset else None
    report = ValidationReport(source=str(source))
    posts: dict[str, set[str]] = {}
    users: dict[str, set[str]] = {}
    small_personas = 0
    for part in find_splits(source, split=split):
        checked = 0
        post_ids, user_ids = (
            posts.setdefault(part.split, set()),
            users.setdefault(part.split, set()),
        )
        for index, raw in iter_raw_rows(part):
            checked += 1
            row = _check_row(dict(raw), part.split, part.name, index, dataset_id, report.problems)
            if row is not None:
                post_ids.add(row.post_id)
                user_ids.add(row.user_id)
                items = count_persona_items(row.persona)
                small_personas += items is not None and items < MIN_PERSONA_ITEMS
        report.rows_per_split[part.split] = checked
        report.rows += checked
    _add_notes(report, posts, users, small_personas)
    report.held_rows, report.held_file = _held_rows(Path(source), split)
    logger.info("validated %s: %d rows, %d problems", source, report.rows, len(report.problems))
    return report


def _held_rows(source: Path, split: str | None) -> tuple[int, str | None]:
    """``(rows, file)`` waiting for personas: those of a folder's ``HELD_FILE`` (of ``split``
    only, when given), or of ``source`` itself when it is that file; ``(0, None)`` without one.

    Raises:
        DataError: the file is there but cannot be read.
    """
    if source.is_file() and source.name == HELD_FILE:
        path, split = source, None  # for a file, ``split`` names what it holds
    elif source.is_dir() and (source / HELD_FILE).is_file():
        path = source / HELD_FILE
    else:
        return 0, None
    try:
        if split is None:
            return int(pq.ParquetFile(path).metadata.num_rows), str(path)
        splits = pq.read_table(path, columns=["split"]).column("split").to_pylist()
    except (OSError, ValueError, KeyError) as err:  # pyarrow's errors derive from these
        raise DataError(
            f"cannot read the rows waiting for personas: {err}", file=str(path)
        ) from None
    return sum(name == split for name in splits), str(path)


def _check_row(
    raw: dict[str, Any],
    split: str,
    file: str,
    index: int,
    dataset: str | None,
    problems: list[Problem],
) -> Any:
    """Validate one row; record each problem; return the `SourceRow` when the row is clean."""
    failed: set[str] = set()
    for _ in range(len(_STAND_INS) + 1):  # each pass sets one more field aside
        row_dataset = dataset if raw.get("dataset") not in (None, "") else dataset or "generic"
        try:
            row = normalize_row(raw, file=file, row=index, dataset=row_dataset)
        except DataError as err:
            name = err.field or "row"
            problems.append(Problem(split, file, index, name, _message(err)))
            top = _TOP_FIELD.match(name)
            key = top.group(0) if top else ""
            if key not in _STAND_INS or key in failed:
                return None
            failed.add(key)
            raw[key] = _STAND_INS[key]
            if key == "prompt":
                raw["turn_id"] = None  # it counted the messages that were set aside
            continue
        return row if not failed else None
    return None


def _message(err: DataError) -> str:
    """The error text without the "file ..., row ..., field ..." prefix the report shows itself."""
    where = []
    if err.file is not None:
        where.append(f"file {err.file}")
    if err.row is not None:
        where.append(f"row {err.row}")
    if err.field is not None:
        where.append(f"field '{err.field}'")
    prefix = ", ".join(where) + ": "
    text = str(err)
    return text[len(prefix) :] if where and text.startswith(prefix) else text


def _add_notes(
    report: ValidationReport, posts: dict[str, set[str]], users: dict[str, set[str]], small: int
) -> None:
    train_posts, train_users = posts.get("train", set()), users.get("train", set())
    for name in posts:
        if name == "train":
            continue
        shared = posts[name] & train_posts
        if shared:
            report.notes.append(
                f"{len(shared):,} {name} threads also appear in train (expected only for "
                "splits by turn)"
            )
        unseen = users[name] - train_users
        if train_users and unseen:
            report.notes.append(f"{len(unseen):,} {name} users have no train rows")
    if small:
        report.notes.append(
            f"{small:,} rows have a structured persona with fewer than {MIN_PERSONA_ITEMS} items "
            "(prepare drops them)"
        )
