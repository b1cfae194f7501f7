"""Run folders of ``humanlm eval``: which folder a run writes to, and when it may resume one.

A folder records the settings that decide its sample records (``EvalConfig.fingerprint``) in
``manifest.json``. A run resumes a folder only when they are equal: ``--out`` naming a folder
with other settings is refused, and without ``--out`` the newest default folder with equal
settings is resumed (``--fresh`` always starts a new one).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from humanlm.errors import ConfigError, DataError
from humanlm.eval.config import EvalConfig
from humanlm.files import check_output_dir
from humanlm.llm.specs import without_endpoint
from humanlm.log import make_run_dir

__all__ = ["check_unique_ids", "resolve_run_dir", "stored_fingerprint"]

logger = logging.getLogger(__name__)


def check_unique_ids(examples: Sequence[Mapping[str, Any]]) -> None:
    """Raise ``DataError`` when an ``example_id`` repeats (records are matched by id)."""
    seen: set[str] = set()
    for i, ex in enumerate(examples):
        key = str(ex["example_id"])
        if key in seen:
            raise DataError(f"example_id {key!r} repeats; resuming needs unique ids", row=i)
        seen.add(key)


def stored_fingerprint(run_dir: Path) -> dict[str, Any] | None:
    """The settings fingerprint a folder was written with (``None``: not an eval folder)."""
    manifest = run_dir / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        stored = json.loads(manifest.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(stored, dict):  # folders written before endpoints were left out
        for key in ("model", "judge.spec"):
            if isinstance(stored.get(key), str):
                stored[key] = without_endpoint(stored[key])
    return stored


def resolve_run_dir(cfg: EvalConfig) -> Path:
    """The folder to write: ``cfg.out``, else the newest matching default folder, else a new one."""
    mine = cfg.fingerprint()
    if cfg.out:
        run_dir = check_output_dir(cfg.out, what="eval --out")
        stored = stored_fingerprint(run_dir)
        if stored is not None and stored != mine:
            diff = sorted(k for k in mine.keys() | stored.keys() if mine.get(k) != stored.get(k))
            raise ConfigError(
                f"{run_dir} holds an evaluation with other settings ({', '.join(diff)}); "
                "choose another --out, or delete the folder to start over"
            )
        if stored is not None and not cfg.resume:
            raise ConfigError(f"{run_dir} already holds an evaluation; --fresh needs a new --out")
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    name = f"eval-{cfg.dataset}"
    check_output_dir(cfg.output_root, what="eval output_root")
    if cfg.resume:
        for candidate in sorted(Path(cfg.output_root).glob(f"*_{name}*"), reverse=True):
            if candidate.is_dir() and stored_fingerprint(candidate) == mine:
                logger.info("resuming %s (same settings)", candidate)
                return candidate
    return make_run_dir(cfg.output_root, name)
