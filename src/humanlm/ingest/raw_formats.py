"""Read raw user data (posts and replies) from JSON lines, JSON, parquet or CSV into columns.

The documented input is one record per item (a post or a reply)::

    {"item_id": "c7", "thread_id": "p1", "parent_id": "c3", "author": "alice",
     "text": "...", "timestamp": 1700000000, "metadata": {"score": 4}}

Other layouts are read through a column mapping: for each of our fields, a source expression
where ``a|b`` means "column ``a``, or ``b`` when ``a`` is missing or empty" and ``a+b`` joins the
non-empty columns with a blank line. `humanlm.ingest.layouts.LAYOUTS` holds named mappings for the
six platforms behind Humanual; ``--columns`` overrides single fields.

Example:
    >>> items = read_items(["dump.jsonl"], layout="reddit")  # doctest: +SKIP
    >>> items.thread_id[0], items.author[0]  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import gzip
import hashlib
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from humanlm.data.render import PLACEHOLDER_AUTHORS
from humanlm.errors import ConfigError, DataError
from humanlm.files import iter_jsonl, not_utf8_error
from humanlm.ingest.layouts import ASSISTANT, FIELDS, LAYOUTS, Layout

__all__ = [
    "INPUT_EXTENSIONS",
    "Items",
    "parse_columns",
    "parse_timestamp",
    "read_items",
]

logger = logging.getLogger(__name__)

_REQUIRED = ("thread_id", "author", "text")
INPUT_EXTENSIONS: tuple[str, ...] = (".jsonl", ".ndjson", ".jsonl.gz", ".json", ".parquet", ".csv")

# Seconds since 1970 stay below this until the year 5138; larger numbers are milliseconds.
_MILLISECONDS_FROM = 10**11
_NUMBER = re.compile(r"^[+-]?\d+(\.\d*)?([eE][+-]?\d+)?$")


@dataclass
class Items:
    """Raw items as parallel columns, in input order, duplicates and unusable rows removed.

    ``author`` is "" for unknown authors; ``metadata`` holds the item's JSON metadata text (with
    ``item_id``, ``author`` and ``timestamp`` added). ``dropped`` counts rows left out, by reason.
    """

    item_id: list[str] = field(default_factory=list)
    thread_id: list[str] = field(default_factory=list)
    parent_id: list[str | None] = field(default_factory=list)
    author: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    timestamp: list[int | None] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)
    read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.item_id)

    @property
    def has_parents(self) -> bool:
        """True when any item names a parent (contexts can then follow reply chains)."""
        return any(p is not None for p in self.parent_id)


def parse_columns(specs: Iterable[str]) -> dict[str, str]:
    """Parse ``--columns`` values such as ``item_id=id,author=user,text=body|selftext``.

    Raises:
        ConfigError: a pair without ``=``, an unknown field, or an empty expression.
    """
    mapping: dict[str, str] = {}
    problems = []
    for spec in specs:
        for pair in filter(None, (p.strip() for p in spec.split(","))):
            target, sep, expression = (s.strip() for s in pair.partition("="))
            if not sep or not expression:
                problems.append(f"--columns {pair!r}: expected FIELD=COLUMN")
            elif target not in FIELDS:
                problems.append(
                    f"--columns {pair!r}: unknown field; use one of {', '.join(FIELDS)}"
                )
            else:
                mapping[target] = expression
    if problems:
        raise ConfigError(problems)
    return mapping


def parse_timestamp(value: Any) -> int | None:
    """UTC seconds from epoch numbers, ISO 8601 text or RFC 2822 text (email dates).

    Numbers of 10^11 and more are milliseconds (10^11 seconds is the year 5138). Naive dates are
    taken as UTC. Returns None for missing or unreadable values.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        return int(_utc(value).timestamp())
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _NUMBER.match(text):
            number = float(text)
        else:
            return _parse_date_text(text)
    else:
        return None
    if number != number:  # NaN from pandas-written files
        return None
    return int(number / 1000 if abs(number) >= _MILLISECONDS_FROM else number)


def read_items(
    paths: Iterable[str | Path],
    *,
    layout: str = "generic",
    columns: Mapping[str, str] | None = None,
    keep: Iterable[str] = (),
    hash_authors: bool = False,
) -> Items:
    """Read every input file into one `Items` table.

    Args:
        paths: files or folders (every supported file inside, sorted by name).
        layout: a key of `LAYOUTS`.
        columns: field -> expression overrides on top of the layout (``""`` unmaps a field).
        keep: more source columns to copy into the item metadata.
        hash_authors: replace author names by stable pseudonyms (``u`` + 16 hex digits).

    Raises:
        ConfigError: unknown layout.
        DataError: missing or unsupported files, unreadable rows, or a file that lacks every
            column a required field (thread_id, author, text) is mapped to.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    chosen = LAYOUTS[layout]
    mapping = {**chosen.columns, **(columns or {})}
    plan = {name: _compile(expr) for name, expr in mapping.items() if expr}
    missing = [name for name in _REQUIRED if name not in plan]
    if missing:
        raise ConfigError(f"no column mapped to {', '.join(missing)}; use --columns FIELD=COLUMN")
    reader = _RowReader(chosen, plan, keep=(*chosen.keep, *keep), hash_authors=hash_authors)
    files = _input_files(paths)
    for path in files:
        reader.read_file(path)
    logger.info(
        "read %d items from %d file(s); kept %d", reader.items.read, len(files), len(reader.items)
    )
    return reader.items


class _RowReader:
    """Maps raw rows onto `Items`, one file after another."""

    def __init__(
        self,
        layout: Layout,
        plan: dict[str, list[list[str]]],
        *,
        keep: tuple[str, ...],
        hash_authors: bool,
    ):
        self.layout, self.plan, self.keep, self.hash_authors = layout, plan, keep, hash_authors
        self.items = Items()
        self._seen: set[str] = set()
        self._per_thread: Counter[str] = Counter()
        self._prefix = re.compile(layout.id_prefix) if layout.id_prefix else None
        self._pseudonyms: dict[str, str] = {}
        self._found: Counter[str] = Counter()

    def read_file(self, path: Path) -> None:
        rows = 0
        columns: set[str] = set()
        self._found = Counter()
        for line, raw in _iter_file(path):
            if rows < 100:  # enough to name the file's columns in an error message
                columns.update(raw)
            rows += 1
            self._add(raw, file=str(path), line=line)
        self.items.read += rows
        unmapped = [name for name in _REQUIRED if rows and not self._found[name]]
        if unmapped:
            wanted = {
                c for name in unmapped for alternative in self.plan[name] for c in alternative
            }
            raise DataError(
                f"no values for {', '.join(unmapped)} (mapped to columns "
                f"{', '.join(sorted(wanted))}); the file has {', '.join(sorted(columns))}; "
                "choose a --layout or map the fields with --columns FIELD=COLUMN",
                file=str(path),
            )

    def _add(self, raw: Mapping[str, Any], *, file: str, line: int) -> None:
        items, drop = self.items, self.items.dropped
        thread = self._ident(self._value("thread_id", raw))
        if thread is None:
            drop["missing_thread_id"] += 1
            return
        is_root = self.layout.root_unless is not None and raw.get(self.layout.root_unless) is None
        item = thread if is_root else self._ident(self._value("item_id", raw))
        if item is None:  # a stable id from the thread and the item's position in it
            item = f"{thread}#{self._per_thread[thread]}"
        self._per_thread[thread] += 1
        if item in self._seen:
            drop["duplicate_item"] += 1
            return
        self._seen.add(item)
        parent = None if is_root else self._ident(self._value("parent_id", raw))
        author = _as_text(self._value("author", raw)).strip()
        if (
            self.layout.assistant_when
            and _as_text(raw.get(self.layout.assistant_when[0])) == (self.layout.assistant_when[1])
        ):
            author = ASSISTANT
        elif self.hash_authors and author.lower() not in PLACEHOLDER_AUTHORS:
            author = self._pseudonym(author)
        timestamp = parse_timestamp(self._value("timestamp", raw))
        metadata = _metadata(self._value("metadata", raw), file=file, line=line)
        for column in self.keep:
            if raw.get(column) is not None and column not in metadata:
                metadata[column] = raw[column]
        metadata.update(item_id=item, author=author, timestamp=timestamp)
        items.item_id.append(item)
        items.thread_id.append(thread)
        items.parent_id.append(parent if parent != item else None)
        items.author.append(author)
        items.text.append(_as_text(self._value("text", raw)))
        items.timestamp.append(timestamp)
        items.metadata.append(json.dumps(metadata, ensure_ascii=False, default=str))

    def _value(self, name: str, raw: Mapping[str, Any]) -> Any:
        for alternative in self.plan.get(name, ()):
            first = raw.get(alternative[0])
            if first is None or first == "":
                continue
            self._found[name] += 1
            if len(alternative) == 1:
                return first
            parts = (_as_text(raw.get(c)).strip() for c in alternative)
            return "\n\n".join(p for p in parts if p)
        return None

    def _ident(self, value: Any) -> str | None:
        if value is None or isinstance(value, bool) or value != value:  # NaN: pandas' missing
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # ids read back as floats from CSV-derived frames
        text = str(value).strip()
        if self._prefix is not None:
            text = self._prefix.sub("", text)
        return text or None

    def _pseudonym(self, author: str) -> str:
        if author not in self._pseudonyms:
            digest = hashlib.blake2b(author.encode("utf-8"), digest_size=8).hexdigest()
            self._pseudonyms[author] = f"u{digest}"
        return self._pseudonyms[author]


def _compile(expression: str) -> list[list[str]]:
    return [
        [c.strip() for c in alt.split("+") if c.strip()]
        for alt in expression.split("|")
        if alt.strip()
    ]


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "\n".join(_as_text(v) for v in value if v is not None)
    return str(value)


def _metadata(value: Any, *, file: str, line: int) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {"value": value}
        return parsed if isinstance(parsed, dict) else {"value": parsed}
    return {"value": value}


def _utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when


def _parse_date_text(text: str) -> int | None:
    try:
        return int(_utc(dt.datetime.fromisoformat(text.replace("Z", "+00:00"))).timestamp())
    except ValueError:
        pass
    try:
        return int(_utc(email.utils.parsedate_to_datetime(text)).timestamp())
    except (TypeError, ValueError, IndexError):
        return None


def _input_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and _supported(p))
            if not inside:
                raise DataError(
                    f"no input files here; expected {', '.join(INPUT_EXTENSIONS)}", file=str(path)
                )
            files.extend(inside)
        elif path.is_file():
            if not _supported(path):
                raise DataError(
                    f"unsupported input type; use one of {', '.join(INPUT_EXTENSIONS)}",
                    file=str(path),
                )
            files.append(path)
        else:
            raise DataError("no such input file or folder", file=str(path))
    if not files:
        raise DataError("no input given; pass --input FILE (or a folder)")
    return files


def _supported(path: Path) -> bool:
    return path.name.endswith(INPUT_EXTENSIONS)


def _iter_file(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    try:
        yield from _file_rows(path)
    except UnicodeDecodeError:
        raise not_utf8_error(
            path, opener=gzip.open if path.name.endswith(".gz") else open
        ) from None


def _file_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    name = path.name
    if name.endswith(".parquet"):
        index = 0
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as err:
            empty = path.stat().st_size == 0
            why = "an empty file (0 bytes)" if empty else f"not a readable parquet file ({err})"
            raise DataError(why, file=str(path)) from None
        for batch in parquet.iter_batches(batch_size=8192):
            for row in batch.to_pylist():
                yield index, row
                index += 1
    elif name.endswith(".csv"):
        yield from _csv_rows(path)
    elif name.endswith(".json"):
        yield from _json_array(path)
    else:
        yield from _jsonl_rows(path)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    for index, row in iter_jsonl(path, strict=True, opener=opener):
        if not isinstance(row, dict):
            raise DataError("line is not a JSON object", file=str(path), row=index)
        yield index, row


def _json_array(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON ({err.msg}, line {err.lineno})", file=str(path)) from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError("expected a JSON array of item objects", file=str(path))
    yield from enumerate(data)


def _csv_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long posts exceed the 128 KiB default
    with path.open(encoding="utf-8", newline="") as fh:
        for index, row in enumerate(csv.DictReader(fh)):
            # Empty CSV cells mean "no value", as a missing JSON key does.
            yield index, {k: (v if v != "" else None) for k, v in row.items() if k is not None}
