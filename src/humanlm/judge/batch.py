"""Judge a JSONL file of groups (``humanlm judge``): validate, judge concurrently, write atomically.

Input rows (one JSON object per line):

- group mode: ``{"example_id", "state", "context": [{"name", "content"}], "ground_truth",
  "candidates": [str, ...]}``;
- aspects mode: the same with exactly one candidate (the response); ``state`` is optional.

An optional ``data_source`` (``wildchat``, ...) decides the judge's Chat gate for the row (group
mode; ``humanlm.judge.group``).

Candidates are judged as given (already-extracted state texts); ``""`` or ``null`` scores 0
without a call. Output rows are the input rows plus ``scores`` (a list per candidate in group
mode, ``{state: score}`` in aspects mode, ``null`` where unscored), ``reason``, in group mode
``reasons`` (one per candidate: ``assistant_voice`` marks a 0 from the Chat gate),
``prompt_version``, ``judge`` and ``judge_params`` (the sampling fields sent), in input order.
Unscored rows do not make the run fail; only unusable input does (``DataError`` naming the
file, line and field). Unscored candidates are logged as a warning with their counts and reasons,
and ``JudgeRunResult.nothing_scored`` tells a run in which the judge scored no candidate at all.

Resuming: rows are also appended to ``.<OUT>.partial.jsonl`` as they finish, so a killed run
keeps them. Running the same command again reuses every fully scored row of ``OUT`` and of that
file (same input row, judge model and prompt version) and judges only the rest; ``fresh=True``
(``--fresh``) judges everything again. The ledger adds up over the invocations.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanlm.errors import ConfigError, DataError
from humanlm.files import (
    append_jsonl,
    check_output_file,
    iter_jsonl,
    open_append,
    read_jsonl,
    write_jsonl,
)
from humanlm.judge.build import Judge
from humanlm.judge.client import LLMJudge
from humanlm.judge.prompt import aspects_prompt_version, group_prompt_version
from humanlm.judge.verdict import SCORED_REASONS
from humanlm.llm.specs import without_endpoint
from humanlm.lock import output_lock
from humanlm.states import LATENT_STATES, STATES

__all__ = ["MODES", "JudgeRunResult", "judge_rows", "read_rows", "run_judge"]

logger = logging.getLogger(__name__)

MODES = ("group", "aspects")


@dataclass(frozen=True)
class JudgeRunResult:
    """What ``run_judge`` did: rows written, how many were not fully scored, how many came from
    an earlier invocation, the ledger; and over all candidates of ``OUT``, how many the judge
    scored (in rows whose judgement succeeded) and how many are unscored."""

    rows: int
    unscored_rows: int
    reused_rows: int
    out_path: Path
    ledger_path: Path
    summary: str
    judged_candidates: int = 0
    unscored_candidates: int = 0

    @property
    def nothing_scored(self) -> bool:
        """The judge was asked about candidates and scored none of them."""
        return self.unscored_candidates > 0 and self.judged_candidates == 0


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
    if row.get("data_source") is not None and not isinstance(row["data_source"], str):
        raise _bad(path, lineno, "data_source", "expected a string")
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
    rows = [_check_row(row, path, n + 1, mode) for n, row in iter_jsonl(path, strict=True)]
    if not rows:
        raise DataError("no rows to judge", file=str(path))
    return rows


_OUTPUT_FIELDS = ("scores", "reason", "reasons", "prompt_version", "judge", "judge_params")


def _judge_params(judge: Judge) -> dict[str, Any]:
    return dict(getattr(judge, "params", None) or {})


def _row_key(
    row: Mapping[str, Any], mode: str, judge_name: str, params: Any, prompt_version: Any
) -> str:
    """What decides a row's judgement: the input row, the mode, the judge model, its sampling
    parameters and its prompt version (not the endpoint serving the model)."""
    row_in = {k: v for k, v in row.items() if k not in _OUTPUT_FIELDS and not k.startswith("_")}
    blob = json.dumps(
        [row_in, mode, without_endpoint(str(judge_name)), params or {}, prompt_version],
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _score_values(row: Mapping[str, Any]) -> list[Any]:
    scores = row.get("scores")
    values = list(scores.values()) if isinstance(scores, dict) else scores
    return values if isinstance(values, list) else []


def _fully_scored(row: Mapping[str, Any]) -> bool:
    scores = row.get("scores")
    values = list(scores.values()) if isinstance(scores, dict) else scores
    if not isinstance(values, list) or row.get("reason") not in SCORED_REASONS:
        return False
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def partial_path(out_path: str | os.PathLike[str]) -> Path:
    """The file rows are appended to while ``out_path`` is being judged."""
    out = Path(out_path)
    return out.with_name(f".{out.name}.partial.jsonl")


def _earlier_rows(out_path: Path, mode: str) -> dict[str, dict[str, Any]]:
    """Fully scored rows of earlier invocations by ``_row_key``: ``OUT``, then the partial file."""
    found: dict[str, dict[str, Any]] = {}
    for source in (out_path, partial_path(out_path)):
        try:
            rows = read_jsonl(source)
        except (OSError, UnicodeDecodeError):
            logger.warning("%s cannot be read; its rows are judged again", source)
            continue
        for row in rows:
            if _fully_scored(row):
                key = _row_key(
                    row,
                    mode,
                    row.get("judge", ""),
                    row.get("judge_params"),
                    row.get("prompt_version"),
                )
                found[key] = row
    return found


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
            source=row.get("data_source"),
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
    if mode == "group":
        out["reasons"] = verdict.reasons
    out["judge"] = judge.name
    out["judge_params"] = _judge_params(judge)
    out["_scored"] = scored
    return out


async def judge_rows(
    judge: Judge,
    rows: Sequence[dict[str, Any]],
    *,
    mode: str = "group",
    use_cache: bool = True,
    progress: bool = False,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Judge every row concurrently (the judge bounds concurrency); results in input order.

    ``on_row`` is called with each judged row as soon as it is done.
    """
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
            if on_row is not None:
                on_row(out)
            bar.set_postfix(unscored=unscored, refresh=False)
            bar.update(1)
    finally:
        bar.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # no unretrieved task errors
    return results


def run_judge(
    input_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    judge: Judge,
    mode: str = "group",
    use_cache: bool = True,
    progress: bool = True,
    fresh: bool = False,
) -> JudgeRunResult:
    """Judge ``input_path`` into ``out_path`` and write ``judge_ledger.json`` next to it.

    Rows an earlier invocation scored fully are reused (module docstring); ``fresh`` judges
    every row again.

    Example:
        >>> judge = build_judge(JudgeConfig("openai:gpt-5-mini@http://127.0.0.1:8000/v1"))  # doctest: +SKIP
        >>> run_judge("groups.jsonl", "out/scored.jsonl", judge=judge)  # doctest: +SKIP

    Raises:
        ConfigError: ``out_path`` cannot be written (checked before any call).
        DataError: unusable input (nothing is written).
    """
    out_path = check_output_file(out_path, what="judge --out")
    # One run per output file: a second one would make every call again and race on the file.
    with output_lock(out_path, command="judge", file=True, option="--out"):
        return _judge_into(
            input_path, out_path, judge=judge, mode=mode, use_cache=use_cache,
            progress=progress, fresh=fresh,
        )  # fmt: skip


def _judge_into(
    input_path: str | os.PathLike[str],
    out_path: Path,
    *,
    judge: Judge,
    mode: str,
    use_cache: bool,
    progress: bool,
    fresh: bool,
) -> JudgeRunResult:
    """``run_judge`` once ``out_path`` is this run's alone."""
    rows = read_rows(input_path, mode=mode)
    journal = partial_path(out_path)
    check_output_file(journal, what="judge --out")
    earlier = {} if fresh else _earlier_rows(out_path, mode)
    params = _judge_params(judge)
    aspects_llm = mode == "aspects" and isinstance(judge, LLMJudge)

    def version(row: Mapping[str, Any]) -> str:
        if aspects_llm:
            return aspects_prompt_version()
        if mode == "group" and isinstance(judge, LLMJudge) and judge.gates(row.get("data_source")):
            return group_prompt_version(gate=True)
        return judge.prompt_version

    keys = [_row_key(row, mode, judge.name, params, version(row)) for row in rows]
    todo = [i for i, key in enumerate(keys) if key not in earlier]
    if fresh:
        journal.unlink(missing_ok=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    logger.info(
        "judging %d of %d rows (%d done before)", len(todo), len(rows), len(rows) - len(todo)
    )

    async def go(log: Any) -> list[dict[str, Any]]:
        def keep(row: dict[str, Any]) -> None:
            append_jsonl(log, {k: v for k, v in row.items() if k != "_scored"})

        try:
            return await judge_rows(
                judge,
                [rows[i] for i in todo],
                mode=mode,
                use_cache=use_cache,
                progress=progress,
                on_row=keep,
            )
        finally:
            await judge.aclose()

    with open_append(journal) as log:
        judged = asyncio.run(go(log)) if todo else []
    results: list[dict[str, Any]] = []
    fresh_rows = dict(zip(todo, judged, strict=True))
    for i, key in enumerate(keys):
        if i in fresh_rows:
            row = fresh_rows[i]
            row.pop("_scored", None)
        else:
            row = {**rows[i], **{k: earlier[key][k] for k in _OUTPUT_FIELDS if k in earlier[key]}}
        results.append(row)
    unscored = sum(not _fully_scored(r) for r in results)
    write_jsonl(out_path, results)
    journal.unlink(missing_ok=True)
    ledger_path = judge.ledger.write(out_path.parent, accumulate_runs=not fresh)
    logger.info("judged %d rows into %s (%d not fully scored)", len(results), out_path, unscored)
    # Scores of rows whose judgement succeeded; a failed one keeps only format zeros.
    judged = sum(
        v is not None for r in results if r.get("reason") == "ok" for v in _score_values(r)
    )
    missing = sum(v is None for r in results for v in _score_values(r))
    if missing:
        reasons = Counter(str(r.get("reason")) for r in results if not _fully_scored(r))
        said = ", ".join(f"{k} x{v}" for k, v in sorted(reasons.items()))
        refused = judge.ledger.last_refusal
        said += f"; last refused request: {refused}" if refused else ""
        if judged:
            what = f"scored {judged} candidates and left {missing} unscored"
        else:
            what = f"scored none of the {missing} candidates it was asked about"
        logger.warning("judge %s %s (%s)", judge.name, what, said)
    return JudgeRunResult(
        len(results),
        unscored,
        len(rows) - len(todo),
        out_path,
        ledger_path,
        judge.ledger.summary(),
        judged_candidates=judged,
        unscored_candidates=missing,
    )
