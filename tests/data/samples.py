"""Shared test helpers: the real Humanual sample rows and small file writers."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

# Real rows (two per hub dataset) live outside the repo; product code never reads them.
SAMPLE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "humanual_sample.jsonl"
)


def sample_rows() -> list[dict[str, Any]]:
    """A fresh copy of the sample rows; skips the test when the fixture file is absent."""
    if not SAMPLE.is_file():
        pytest.skip(f"real data fixture not found: {SAMPLE}")
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line]


def sample_row(dataset: str, *, turn_id: int | None = None, post_id: str | None = None) -> dict:
    """The first sample row of a hub dataset name (``opinion``, ``email``...), optionally narrowed."""
    for row in sample_rows():
        if row["dataset"] != dataset:
            continue
        if turn_id is not None and row["turn_id"] != turn_id:
            continue
        if post_id is not None and row["post_id"] != post_id:
            continue
        return copy.deepcopy(row)
    raise LookupError(f"no sample row for {dataset} turn={turn_id} post={post_id}")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def persona_with_items(n: int) -> str:
    """A structured persona JSON text with ``n`` list items spread over the four lists."""
    lists: dict[str, list[str]] = {
        k: [] for k in ("interests", "values", "communication", "statistics")
    }
    names = list(lists)
    for i in range(n):
        lists[names[i % 4]].append(f"item {i}")
    return json.dumps({"demographics": {"age group": "30s", "gender": "NA"}, **lists})
