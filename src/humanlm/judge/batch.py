"""Judge a JSONL file of groups (``humanlm judge``): validate, judge concurrently, write atomically.

Input rows (one JSON object per line):

- group mode: ``{"example_id", "state", "context": [{"name", "content"}], "ground_truth",
  "candidates": [str, ...]}``;
- aspects mode: the same with exactly one candidate (the response); ``state`` is optional.

Candidates are judged as given (already-extracted state texts); ``""`` or ``null`` scores 0
without a call. Output rows are the input rows plus ``scores`` (a list per candidate in group
mode, ``{state: score}`` in aspects mode, ``null`` where unscored), ``reason``,
``prompt_version`` and ``judge``, in input order. Unscored rows do not make the run fail; only
unusable input does (``DataError`` naming the file, line and field).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanlm.errors import ConfigError, DataError
from humanlm.files import write_jsonl
from humanlm.judge.build import Judge
from humanlm.states import LATENT_STATES, STATES

__all__ = ["MODES", "JudgeRunResult", "judge_rows", "read_rows", "run_judge"]

logger = logging.getLogger(__name__)

MODES = ("group", "aspects")


@dataclass(frozen=True)
class JudgeRunResult:
    """What ``run_judge`` did: rows written, how many were not fully scored, the ledger."""

    rows: int
    unscored_rows: int
    out_path: Path
    ledger_path: Path
    summary: str


def _bad(path: Path, lineno: int, field: str | None, problem: str) -> DataError:
    return DataError(f"line {lineno}: {problem}", file=str(path), row=lineno - 1, field=field)


def _check_row(row: Any, path: Path, lineno: int, mode: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise _bad(path, lineno, None, f"expected a JSON object, got {type(row).__name__}")
    for field in ("example_id", "ground_truth", "context", "candidates"):
        if field not in row:
            raise _bad(path, lineno, field, "missing")
    if not isinstance(row["example_id"], str | int) or isinstance(row["example_id"], bool):
        raise _bad(path, lineno, "example_id", "expected a string")
    if not isinstance(row["ground_truth"], str):
        raise _bad(path, lineno, "ground_truth", "expected a string")
    state = row.get("state")
    if mode == "group" and state is None:
        raise _bad(path, lineno, "state", f"missing; one of {', '.join(STATES)}")
    if state is not None and state not in STATES:
        raise _bad(path, lineno, "state", f"unknown state {state!r}; one of {', '.join(STATES)}")
    context = row["context"]
    if not isinstance(context, list):
        raise _bad(path, lineno, "context", "expected a list of {name, content} objects")
    for j, message in enumerate(context):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise _bad(path, lineno, "context", f"message {j} needs a string 'content'")
        if not isinstance(message.get("name", message.get("role")), str):
            raise _bad(path, lineno, "context", f"message {j} needs a string 'name'")
    candidates = row["candidates"]
    if not isinstance(candidates, list) or not all(
        c is None or isinstance(c, str) for c in candidates
    ):
        raise _bad(path, lineno, "candidates", "expected a list of strings")
    if mode == "group" and not candidates:
        raise _bad(path, lineno, "candidates", "empty list; give at least one candidate")
    if mode == "aspects" and len(candidates) != 1:
        raise _bad(
            path,
            lineno,
            "candidates",
            f"aspects mode takes exactly 1 candidate, got {len(candidates)}",
        )
    return row


def read_rows(path: str | os.PathLike[str], *, mode: str = "group") -> list[dict[str, Any]]:
    """Read and validate every row of a JSONL file (blank lines are skipped).

    Raises:
        DataError: the file is missing, or a line is not a valid row (names file, line, field).
        ConfigError: ``mode`` is not ``group`` or ``aspects``.
    """
    if mode not in MODES:
        raise ConfigError(f"judge mode {mode!r}: use one of {', '.join(MODES)}")
    path = Path(path)
    if not path.is_file():
        raise DataError("input file not found", file=str(path))
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as err:
                raise _bad(path, lineno, None, f"not valid JSON ({err.msg})") from None
            rows.append(_check_row(row, path, lineno, mode))
    if not rows:
        raise DataError("no rows to judge", file=str(path))
    return rows


async def _judge_row(
    judge: Judge, row: dict[str, Any], *, mode: str, use_cache: bool
) -> dict[str, Any]:
    if mode == "group":
        verdict = await judge.judge_group(
            context=row["context"],
            ground_truth=row["ground_truth"],
            state=row["state"],
            candidates=row["candidates"],
            use_cache=use_cache,
        )
        scores: Any = verdict.scores
        version = verdict.verdicts[0].prompt_version
        scored = verdict.is_scored
    else:
        aspects = await judge.judge_aspects(
            context=row["context"],
            ground_truth=row["ground_truth"],
            response=row["candidates"][0],
            states=LATENT_STATES,
            use_cache=use_cache,
        )
        scores = aspects.scores
        version = next(iter(aspects.verdicts.values())).prompt_version
        verdict, scored = aspects, aspects.is_scored
    out = {**row, "scores": scores, "reason": verdict.reason, "prompt_version": version}
    out["judge"] = judge.name
    out["_scored"] = scored
    return out


async def judge_rows(
    judge: Judge,
    rows: Sequence[dict[str, Any]],
    *,
    mode: str = "group",
    use_cache: bool = True,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Judge every row concurrently (the judge bounds concurrency); results in input order."""
    from tqdm import tqdm

    async def indexed(i: int, row: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return i, await _judge_row(judge, row, mode=mode, use_cache=use_cache)

    tasks = [asyncio.ensure_future(indexed(i, row)) for i, row in enumerate(rows)]
    results: list[dict[str, Any]] = [{} for _ in rows]
    unscored = 0
    bar = tqdm(total=len(rows), desc="judging", unit="row", disable=not progress)
    try:
        for next_done in asyncio.as_completed(tasks):
            i, out = await next_done
            unscored += not out["_scored"]
            results[i] = out
            bar.set_postfix(unscored=unscored, refresh=False)
            bar.update(1)
    finally:
        bar.close()
        for task in tasks:
            task.cancel()
    return results


def run_judge(
    input_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    judge: Judge,
    mode: str = "group",
    use_cache: bool = True,
    progress: bool = True,
) -> JudgeRunResult:
    """Judge ``input_path`` into ``out_path`` and write ``judge_ledger.json`` next to it.

    Example:
        >>> judge = build_judge("openai:gpt-5-mini@http://127.0.0.1:8000/v1")  # doctest: +SKIP
        >>> run_judge("groups.jsonl", "out/scored.jsonl", judge=judge)  # doctest: +SKIP

    Raises:
        DataError: unusable input (nothing is written).
    """
    rows = read_rows(input_path, mode=mode)

    async def go() -> list[dict[str, Any]]:
        try:
            return await judge_rows(judge, rows, mode=mode, use_cache=use_cache, progress=progress)
        finally:
            await judge.aclose()

    results = asyncio.run(go())
    unscored = sum(not r.pop("_scored") for r in results)
    out_path = Path(out_path)
    write_jsonl(out_path, results)
    ledger_path = judge.ledger.write(out_path.parent)
    logger.info("judged %d rows into %s (%d not fully scored)", len(results), out_path, unscored)
    return JudgeRunResult(len(results), unscored, out_path, ledger_path, judge.ledger.summary())
