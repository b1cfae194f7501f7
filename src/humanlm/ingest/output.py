"""The files of a built folder: split parquet files, held-back rows, the summary and the card.

A built folder holds ``train.parquet``, ``val.parquet`` and ``test.parquet`` (Humanual rows),
``build_summary.json`` (how it was built, persona outcome), ``README.md`` (the dataset card),
``personas.jsonl`` (the persona log) and, when some personas failed, ``persona_failed.parquet``:
those users' rows with a ``split`` column, kept out of the splits until a persona exists.
All files are written through temporary files and renamed into place together at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from humanlm.errors import DataError
from humanlm.files import atomic_path
from humanlm.ingest.card import merge_stats, render_card, table_stats
from humanlm.ingest.splits import SPLIT_NAMES

__all__ = [
    "HELD_FILE",
    "HUMANUAL_SCHEMA",
    "PERSONA_LOG",
    "SUMMARY_FILE",
    "BuiltFolder",
    "read_built",
    "write_built",
]

logger = logging.getLogger(__name__)

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string()), ("metadata", pa.string())])
HUMANUAL_SCHEMA = pa.schema(
    [
        ("prompt", pa.list_(_MESSAGE)),
        ("completion", pa.string()),
        ("user_id", pa.string()),
        ("post_id", pa.string()),
        ("turn_id", pa.int64()),
        ("timestamp", pa.int64()),
        ("metadata", pa.string()),
        ("persona", pa.string()),
    ]
)
HELD_SCHEMA = HUMANUAL_SCHEMA.append(pa.field("split", pa.string()))
SUMMARY_FILE = "build_summary.json"
HELD_FILE = "persona_failed.parquet"
PERSONA_LOG = "personas.jsonl"
CARD_FILE = "README.md"


@dataclass
class BuiltFolder:
    """A built folder read back: split tables, held-back rows (or None) and the build summary."""

    tables: dict[str, pa.Table]
    held: pa.Table | None = None
    info: dict[str, Any] = field(default_factory=dict)


def read_built(data_dir: str | Path) -> BuiltFolder:
    """Read a folder written by `write_built` (``humanlm data build``).

    Raises:
        DataError: a split file is missing or lacks Humanual columns.
    """
    folder = Path(data_dir)
    tables = {}
    for name in SPLIT_NAMES:
        path = folder / f"{name}.parquet"
        if not path.is_file():
            raise DataError(
                f"no {name}.parquet here; build the folder with `humanlm data build`",
                file=str(folder),
            )
        table = pq.read_table(path)
        missing = [c for c in HUMANUAL_SCHEMA.names if c not in table.column_names]
        if missing:
            raise DataError(
                f"not a built split: missing columns {', '.join(missing)}", file=str(path)
            )
        tables[name] = table.select(HUMANUAL_SCHEMA.names).cast(HUMANUAL_SCHEMA)
    held_path = folder / HELD_FILE
    held = pq.read_table(held_path).cast(HELD_SCHEMA) if held_path.is_file() else None
    summary = folder / SUMMARY_FILE
    info = json.loads(summary.read_text("utf-8")) if summary.is_file() else {}
    return BuiltFolder(tables=tables, held=held, info=info)


def write_built(
    data_dir: str | Path,
    *,
    tables: Mapping[str, pa.Table] | Iterable[tuple[str, pa.Table]],
    held: pa.Table | None,
    info: Mapping[str, Any],
) -> dict[str, Any]:
    """Write the splits, the held-back rows (removed when None), the summary and the card.

    Args:
        data_dir: the folder.
        tables: split name -> table, or ``(name, table)`` pairs; pairs from a generator are
            written and released one at a time.
        held: rows held back from the splits (with a ``split`` column), or None.
        info: the build summary to store (``stats`` is added).

    Returns:
        The statistics of the written splits (also stored in the summary under ``stats``).
    """
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = tables.items() if isinstance(tables, Mapping) else tables
    parts = {}
    title = f"Humanual-format dataset `{folder.name}`"
    with contextlib.ExitStack() as stack:
        for name, table in pairs:
            tmp = stack.enter_context(atomic_path(folder / f"{name}.parquet"))
            pq.write_table(table.cast(HUMANUAL_SCHEMA), tmp)
            parts[name] = table_stats(table)
            del table
        stats = merge_stats(parts)
        summary = {**info, "stats": stats}
        if held is not None and held.num_rows:
            tmp = stack.enter_context(atomic_path(folder / HELD_FILE))
            pq.write_table(held.cast(HELD_SCHEMA), tmp)
        tmp = stack.enter_context(atomic_path(folder / SUMMARY_FILE))
        tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp = stack.enter_context(atomic_path(folder / CARD_FILE))
        tmp.write_text(render_card(title=title, stats=stats, build=summary), encoding="utf-8")
    if held is None or not held.num_rows:
        (folder / HELD_FILE).unlink(missing_ok=True)
    logger.info("wrote %s: %s", folder, {k: v["rows"] for k, v in stats["splits"].items()})
    return stats
