"""Resolve a data source to prepared examples: the bundled demo, a prepared folder or raw rows.

Training and evaluation both take ``SRC`` in any of these forms; this module is the one place
that decides which one it is.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from humanlm.data.load import EXTENSIONS
from humanlm.data.prepare import PREPARED_COLUMNS, UNSEEN_SPLIT, load_prepared, run_prepare
from humanlm.errors import DataError

__all__ = ["DEMO_SOURCE", "demo_data_dir", "is_prepared_dir", "resolve_split"]

logger = logging.getLogger(__name__)

DEMO_SOURCE = "demo"


def demo_data_dir() -> Path:
    """The folder of the bundled demo dataset (``train``/``val``/``test.jsonl``)."""
    return Path(str(resources.files("humanlm.data") / "demo"))


def is_prepared_dir(path: str | Path) -> bool:
    """True when ``path`` is a folder of prepared parquet files (written by ``data prepare``)."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_dir():
        return False
    files = sorted(p.glob("*.parquet"))
    if not files:
        return False
    names = set(pq.read_schema(files[0]).names)
    return set(PREPARED_COLUMNS) <= names


def resolve_split(
    source: str | Path,
    *,
    dataset: str | None,
    split: str,
    work_dir: str | Path,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Return the prepared examples of ``split`` from ``source``.

    Args:
        source: ``demo`` (bundled data), a prepared folder, or anything ``run_prepare`` reads
            (a file, a folder of split files, a hub repo id).
        dataset: dataset id for raw sources (``None``/``auto``/``demo``: from each row).
        split: ``train``, ``val``, ``test``, ``test_unseen`` (users held out by ``data prepare
            --holdout-users``), or any split the source has.
        work_dir: where raw sources are prepared on the fly.
        limit: keep the first ``limit`` examples.

    Raises:
        DataError: the source cannot be read, or it has no ``test_unseen`` split (a raw file is
            never one: only ``data prepare --holdout-users`` knows which users it held out).
    """
    if str(source) == DEMO_SOURCE:
        source, dataset = demo_data_dir(), "auto"
    if dataset == DEMO_SOURCE:
        dataset = "auto"
    if split in (UNSEEN_SPLIT, f"{UNSEEN_SPLIT}_dropout") and not _holds_split(source, split):
        raise DataError(
            f"no {split} split here: it is written by `humanlm data prepare --input SRC --out DIR "
            "--holdout-users K|FRACTION`; evaluate DIR",
            file=str(source),
        )
    if is_prepared_dir(source):
        path = Path(source) / f"{split}.parquet"
        if not path.is_file():
            held = ", ".join(sorted(p.stem for p in Path(source).glob("*.parquet")))
            raise DataError(
                f"{source} has no {split} split (it holds: {held}; `data prepare` writes a "
                f"single file as train); read one of those with --split NAME, or prepare the "
                "file again with --eval-only to put every row in test"
            )
    else:
        # A single file is prepared as `split` (eval: test, as `data prepare --eval-only` does);
        # a folder or hub source keeps only that split.
        summary = run_prepare(source=source, dataset=dataset, out_dir=work_dir, split=split)
        logger.info("prepared %s: %s", source, summary.describe().replace("\n", "; "))
        path = Path(work_dir) / f"{split}.parquet"
    examples = load_prepared(path)
    return examples[:limit] if limit else examples


def _holds_split(source: str | Path, split: str) -> bool:
    """Whether a local folder (prepared or raw) has a file for ``split``."""
    folder = Path(source)
    if is_prepared_dir(folder):
        return (folder / f"{split}.parquet").is_file()
    return folder.is_dir() and any((folder / f"{split}{ext}").is_file() for ext in EXTENSIONS)
