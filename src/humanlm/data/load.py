"""Load Humanual-format rows from the hub, a local file or a folder of split files.

Sources:
- a hub repo id (``snap-stanford/humanual-opinion``) or a dataset id/hub name (``reddit``,
  ``opinion``): every split the repo has, via `datasets.load_dataset` (needs network);
- a local ``.parquet`` / ``.jsonl`` / ``.json`` file: one split (``train`` unless told);
- a folder holding ``train.*``, ``val.*`` and/or ``test.*`` files in any of those formats.

Rows are streamed (parquet in record batches, JSON lines line by line) and every row, hub or
local, goes through `humanlm.data.schema.normalize_row`.

Example:
    >>> from humanlm.data.load import find_splits, iter_rows
    >>> for split in find_splits("data/reddit"):  # doctest: +SKIP
    ...     for row in iter_rows(split, dataset="reddit"):
    ...         print(split.split, row.index, row.user_id)
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from humanlm.data.schema import SourceRow, normalize_row
from humanlm.data.sources import ALIASES, DATASETS
from humanlm.errors import DataError
from humanlm.files import broken_link, decode_utf8, iter_jsonl, refuse_lone_surrogates

__all__ = [
    "EXTENSIONS",
    "SPLITS",
    "SplitSource",
    "find_splits",
    "iter_raw_rows",
    "iter_rows",
    "load_rows",
]

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
EXTENSIONS: tuple[str, ...] = (".parquet", ".jsonl", ".json")

_HUB_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")
_PARQUET_BATCH_ROWS = 512


@dataclass(frozen=True)
class SplitSource:
    """One split of a source: a local file, or a split of a hub dataset.

    Attributes:
        split: the split name (``train``, ``val``, ``test``, ...).
        name: how errors name it: the file path, or ``repo[split]`` for the hub.
        path: the local file, or None for the hub.
        hub_rows: the loaded `datasets.Dataset` of a hub split, or None.
    """

    split: str
    name: str
    path: Path | None = None
    hub_rows: Any = field(default=None, compare=False, repr=False)

    @property
    def num_rows(self) -> int | None:
        """Row count when it is cheap to know (parquet metadata, hub), else None."""
        if self.hub_rows is not None:
            return len(self.hub_rows)
        if self.path is not None and self.path.suffix == ".parquet":
            return _open_parquet(self.path).metadata.num_rows
        return None


def find_splits(source: str | Path, *, split: str | None = None) -> list[SplitSource]:
    """Resolve ``source`` into its splits.

    Args:
        source: a file, a folder of split files, a hub repo id, or a dataset id / hub name.
        split: for a file, the split it holds (default ``train``); for a folder or the hub,
            keep only this split.

    Raises:
        DataError: the source does not exist, has no split files, has two files for one split,
            has an unsupported extension, or the hub download fails.
    """
    path = Path(source)
    if (why := broken_link(path)) is not None:
        raise DataError(f"{why}; name the data itself or a link that leads to it")
    if path.is_file():
        _check_extension(path)
        return [SplitSource(split=split or "train", name=str(path), path=path)]
    if path.is_dir():
        return _folder_splits(path, split)
    text = str(source).strip()
    key = text.lower()
    if key in DATASETS or key in ALIASES:
        repo = DATASETS[ALIASES.get(key, key)]["hub_repo"]
        if repo is None:
            raise DataError(f"dataset {text!r} has no hub repo; pass a file or folder")
        return _hub_splits(repo, split)
    if _HUB_REPO.match(text):
        return _hub_splits(text, split)
    raise DataError(
        f"no such file or folder: {text} (nor a hub repo id like snap-stanford/humanual-opinion)"
    )


def iter_raw_rows(source: SplitSource) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row number, raw row dict)``; for JSON lines the row number is the line number."""
    if source.hub_rows is not None:
        yield from enumerate(source.hub_rows)
        return
    assert source.path is not None
    suffix = source.path.suffix
    if suffix == ".parquet":
        yield from _parquet_rows(source.path)
    elif suffix == ".jsonl":
        yield from _jsonl_rows(source.path)
    else:
        yield from _json_rows(source.path)


def iter_rows(source: SplitSource, *, dataset: str | None) -> Iterator[SourceRow]:
    """Yield validated rows of one split.

    Args:
        source: the split.
        dataset: our dataset id; None takes it from each row's ``dataset`` column.

    Raises:
        DataError: at the first bad row, naming file, row and field.
    """
    for index, raw in iter_raw_rows(source):
        yield normalize_row(raw, file=source.name, row=index, dataset=dataset)


def load_rows(
    source: str | Path, *, dataset: str | None, split: str | None = None
) -> dict[str, list[SourceRow]]:
    """Load every split of ``source`` into memory: ``{split: [SourceRow, ...]}`` (small data)."""
    return {s.split: list(iter_rows(s, dataset=dataset)) for s in find_splits(source, split=split)}


def _check_extension(path: Path) -> None:
    if path.suffix not in EXTENSIONS:
        raise DataError(
            f"unsupported file type {path.suffix!r}; use one of {', '.join(EXTENSIONS)}",
            file=str(path),
        )


def _folder_splits(folder: Path, split: str | None) -> list[SplitSource]:
    wanted = (split,) if split else SPLITS
    found = []
    for name in wanted:
        files = [
            folder / f"{name}{ext}" for ext in EXTENSIONS if (folder / f"{name}{ext}").is_file()
        ]
        if len(files) > 1:
            raise DataError(
                f"split {name!r} has several files ({', '.join(f.name for f in files)}); keep one",
                file=str(folder),
            )
        if files:
            found.append(SplitSource(split=name, name=str(files[0]), path=files[0]))
    if not found:
        expected = ", ".join(f"{name}{{{','.join(EXTENSIONS)}}}" for name in wanted)
        raise DataError(f"no split files in this folder; expected {expected}", file=str(folder))
    return found


def _hub_splits(repo: str, split: str | None) -> list[SplitSource]:
    import datasets  # heavy: imported only for hub sources

    logger.info("loading %s from the Hugging Face hub", repo)
    try:
        loaded = datasets.load_dataset(repo, split=split) if split else datasets.load_dataset(repo)
    except Exception as err:  # network, auth, missing repo: all reported as one user-fixable error
        raise DataError(f"could not load hub dataset {repo}: {err}") from err
    by_split = {split: loaded} if split else dict(loaded)
    return [
        SplitSource(split=name, name=f"{repo}[{name}]", hub_rows=rows)
        for name, rows in by_split.items()
    ]


def _open_parquet(path: Path) -> pq.ParquetFile:
    """``path`` opened as parquet.

    Raises:
        DataError: an empty (0-byte), truncated or otherwise unreadable file, in one line.
    """
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as err:
        empty = path.stat().st_size == 0
        why = "an empty file (0 bytes)" if empty else f"not a readable parquet file ({err})"
        raise DataError(f"{why}; write it again or remove it", file=str(path)) from None


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    index = 0
    batches = _open_parquet(path).iter_batches(batch_size=_PARQUET_BATCH_ROWS)
    while True:
        try:
            batch = next(batches, None)
        except (OSError, pa.ArrowException) as err:  # a corrupt page past a sound footer
            raise DataError(
                f"not a readable parquet file after row {index} ({err}); write it again",
                file=str(path),
            ) from None
        if batch is None:
            return
        for raw in batch.to_pylist():
            yield index, raw
            index += 1


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, raw in iter_jsonl(path, strict=True):
        if not isinstance(raw, dict):
            raise DataError("row is not a JSON object", file=str(path), row=index)
        yield index, raw


def _json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    # A JSON array must be parsed whole; use JSON lines or parquet for large data.
    try:
        data = json.loads(decode_utf8(path.read_bytes(), file=path))
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON ({err.msg}, line {err.lineno})", file=str(path)) from None
    if not isinstance(data, list):
        raise DataError("expected a JSON array of row objects", file=str(path))
    for index, raw in enumerate(data):
        if not isinstance(raw, dict):
            raise DataError("row is not a JSON object", file=str(path), row=index)
        refuse_lone_surrogates(raw, file=path, row=index)
        yield index, raw
