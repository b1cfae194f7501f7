"""The dataset card (``README.md``) of a built folder: counts, lengths, filters and personas.

Every figure is computed from the split files as written, so the card always matches the data;
how the data was built comes from ``build_summary.json`` next to them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from humanlm.states.ending import END_SIGNAL

__all__ = ["merge_stats", "render_card", "table_stats"]

logger = logging.getLogger(__name__)

_MAX_LISTED_FAILURES = 50


def table_stats(table: pa.Table) -> dict[str, Any]:
    """What `merge_stats` needs from one split: its users, threads and per-row lengths.

    Reply lengths leave out end rows (their reply is the end signal, not a message).
    """
    replies, prompts = table.column("completion"), table.column("prompt")
    replies = replies.filter(pc.not_equal(replies, END_SIGNAL))
    return {
        "rows": table.num_rows,
        "users": set(pc.unique(table.column("user_id")).to_pylist()),
        "threads": set(pc.unique(table.column("post_id")).to_pylist()),
        "lengths": {
            "reply characters": _numbers(pc.utf8_length(replies)),
            "reply words": _numbers(pc.count_substring_regex(replies, r"\S+")),
            "context messages": _numbers(pc.list_value_length(prompts)),
            "context characters": np.concatenate(
                [np.zeros(0, np.int64)] + [_context_chars(c) for c in prompts.chunks]
            ),
        },
    }


def merge_stats(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Combine `table_stats` of the splits into the statistics the card shows."""
    users: set[str] = set()
    threads: set[str] = set()
    splits = {}
    for name, part in parts.items():
        users |= part["users"]
        threads |= part["threads"]
        splits[name] = {
            "rows": part["rows"],
            "users": len(part["users"]),
            "threads": len(part["threads"]),
        }
    lengths = {}
    if any(part["rows"] for part in parts.values()):
        for key in next(iter(parts.values()))["lengths"]:
            values = np.concatenate([part["lengths"][key] for part in parts.values()])
            lengths[key] = _describe(values)
    return {
        "splits": splits,
        "rows": sum(s["rows"] for s in splits.values()),
        "users": len(users),
        "threads": len(threads),
        "lengths": lengths,
    }


def render_card(
    *, title: str, stats: Mapping[str, Any], build: Mapping[str, Any] | None = None
) -> str:
    """The Markdown card. ``build`` is the content of ``build_summary.json`` (may be absent)."""
    build = build or {}
    lines = [
        f"# {title}",
        "",
        "Humanual-format user data: each row is one real reply (`completion`) by `user_id`, the",
        "thread it answered (`prompt`, oldest message first, message 0 the thread's post) and the",
        "user's `persona`. Built with `humanlm data build`; load it with",
        "`humanlm data prepare --input <this folder> --dataset generic --out <prepared>`.",
        "",
        "## Splits",
        "",
        "| split | replies (rows) | users | threads |",
        "|---|---:|---:|---:|",
    ]
    for name, split in stats["splits"].items():
        lines.append(f"| {name} | {split['rows']:,} | {split['users']:,} | {split['threads']:,} |")
    lines.append(f"| all | {stats['rows']:,} | {stats['users']:,} | {stats['threads']:,} |")
    if stats["lengths"]:
        lines += [
            "",
            "## Lengths",
            "",
            "| | mean | median | p95 | max |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, d in stats["lengths"].items():
            lines.append(
                f"| {name} | {d['mean']:.1f} | {d['median']:g} | {d['p95']:g} | {d['max']:g} |"
            )
    if build:
        lines += ["", "## How it was built", ""] + _build_lines(build)
    personas = build.get("personas")
    if personas:
        lines += ["", "## Personas", ""] + _persona_lines(personas)
    return "\n".join(lines) + "\n"


def _build_lines(build: Mapping[str, Any]) -> list[str]:
    options = build.get("options", {})
    lines = [f"- input: {', '.join(build.get('inputs', []))} (layout `{options.get('layout')}`)"]
    lines.append(
        f"- contexts: `{build.get('context_mode')}`; split by `{options.get('split_by')}` with "
        f"ratios {options.get('ratios')}; val/test limited to users seen in train: "
        f"{'yes' if options.get('seen_users') else 'no'}"
    )
    limits = {
        k: options.get(k)
        for k in ("min_replies", "max_replies", "max_reply_chars", "max_reply_words")
        if options.get(k) is not None
    }
    lines.append(f"- limits: {_pairs(limits) or 'none'}")
    lines.append(
        f"- items read {build.get('items_read', 0):,}, kept {build.get('items_kept', 0):,}; "
        f"left out: {_pairs(build.get('items_dropped', {})) or 'none'}"
    )
    lines.append(
        f"- candidate replies {build.get('replies_found', 0):,}; left out: "
        f"{_pairs(build.get('replies_dropped', {})) or 'none'}"
    )
    if options.get("end_examples"):
        lines.append(
            f"- end examples: {build.get('end_examples', 0):,} rows, one per conversation whose "
            f"last message is the assistant's; their reply is the end signal `{END_SIGNAL}`"
        )
    if build.get("broken_chains"):
        lines.append(
            f"- {build['broken_chains']:,} replies answer an item missing from the input; "
            "their context starts at the thread's post (when known) and the nearest known ancestor"
        )
    return lines


def _persona_lines(personas: Mapping[str, Any]) -> list[str]:
    source = personas.get("source")
    if source == "fixed":
        return ["Every row carries the same fixed persona text."]
    if source == "none":
        return ["No personas (`--no-personas`): the `persona` column is empty."]
    if source == "pending":
        return ["Not generated yet: run `humanlm data personas --input <this folder> --llm SPEC`."]
    failed = personas.get("failed", [])
    lines = [
        f"Summarised by `{personas.get('model')}` (persona prompt version "
        f"{personas.get('prompt_version')}) from each user's earliest {personas.get('k')} training "
        f"replies (users without training rows: their earliest replies in their own split).",
        f"- users with a persona: {personas.get('users', 0):,} ({personas.get('generated', 0):,} "
        f"generated in the last run, {personas.get('reused', 0):,} reused)",
        f"- users whose persona failed: {len(failed):,}; their {personas.get('held_rows', 0):,} rows "
        "are not in the splits but kept in `persona_failed.parquet` (a later "
        "`humanlm data personas` run retries them and puts the rows back)",
    ]
    if personas.get("failure_reasons"):
        lines.append(f"- failure reasons: {_pairs(personas['failure_reasons'])}")
    if failed:
        shown = ", ".join(f"`{u}`" for u in failed[:_MAX_LISTED_FAILURES])
        more = len(failed) - _MAX_LISTED_FAILURES
        lines.append(f"- failed users: {shown}" + (f" and {more} more" if more > 0 else ""))
    return lines


def _pairs(counts: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in sorted(counts.items())
    )


def _numbers(values: pa.ChunkedArray) -> np.ndarray:
    # to_numpy: np.asarray would walk an Arrow array value by value.
    return values.to_numpy().astype(np.int64) if len(values) else np.zeros(0, np.int64)


def _describe(values: np.ndarray) -> dict[str, float]:
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return {"mean": 0.0, "median": 0.0, "p95": 0.0, "max": 0.0}
    return {
        "mean": float(data.mean()),
        "median": float(np.median(data)),
        "p95": float(np.percentile(data, 95)),
        "max": float(data.max()),
    }


def _context_chars(prompts: pa.ListArray) -> np.ndarray:
    """Characters of all context messages per row."""
    flat = prompts.flatten().field("content")
    chars = pc.utf8_length(flat).fill_null(0).to_numpy().astype(np.int64)
    offsets = np.asarray(prompts.offsets, dtype=np.int64)
    offsets = offsets - offsets[0]  # a sliced array's offsets point into the shared values
    totals = np.concatenate([[0], np.cumsum(chars)])
    return totals[offsets[1:]] - totals[offsets[:-1]]
