"""The report of a simulation run: ``report.md`` and ``report.html`` next to the conversations.

Counts, end reasons, the fidelity check (user turns drawn again, failing turns kept; see
``humanlm.simulate.fidelity``), simulated user replies cut at the token budget (``reply_cut``),
turns per conversation, message lengths and a few sample transcripts.
"""

from __future__ import annotations

import html
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from humanlm.files import write_text
from humanlm.simulate.fidelity import FIDELITY_REASONS

__all__ = ["END_REASONS", "build_report", "write_report"]

_SAMPLES = 3
_REPLY_CUT = "reply_cut (simulated user replies past the token budget, cut at its character cap)"

# Why a conversation ended (a record's ``end_reason``), and what the report says of it.
END_REASONS: dict[str, str] = {
    "user_ended": "the simulated user ended the conversation (the end signal)",
    "max_turns": "the simulated user's turns reached --max-turns",
    "empty_user_turn": "the simulated user wrote nothing, also when asked again",
    "user_error": "the simulator failed after its retries",
    "assistant_error": "the assistant failed after its retries",
}


def _words(records: Sequence[dict[str, Any]], role: str, *, skip_opening: bool) -> list[int]:
    counts = []
    for r in records:
        start = r.get("opening_turns", 0) if skip_opening else 0
        counts += [len(m["content"].split()) for m in r["messages"][start:] if m["role"] == role]
    return counts


def _stats(values: Sequence[int | float]) -> str:
    if not values:
        return "n/a"
    return (
        f"mean {statistics.fmean(values):.1f}, median {statistics.median(values):g}, "
        f"min {min(values):g}, max {max(values):g}"
    )


def _fidelity(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Redrawn and kept user turns per reason, over the records that ran the check."""
    checked = [r["fidelity"] for r in records if isinstance(r.get("fidelity"), dict)]
    resampled: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    for f in checked:
        resampled.update(f.get("resampled") or {})
        kept.update(f.get("kept") or {})
    return {
        "checked": len(checked),
        "affected": sum(bool(f.get("resampled") or f.get("kept")) for f in checked),
        "rows": [
            (k, resampled[k], kept[k], meaning)
            for k, meaning in FIDELITY_REASONS.items()
            if k in resampled or k in kept
        ],
    }


def build_report(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The numbers of the report, as plain data."""
    reasons = Counter(r["end_reason"] for r in records)
    return {
        "conversations": len(records),
        "end_reasons": [(k, reasons[k], END_REASONS.get(k, "")) for k in sorted(reasons)],
        "fidelity": _fidelity(records),
        "reply_cut": sum((r.get("usage") or {}).get("user_replies_cut", 0) for r in records),
        "turns": _stats([r["turns"] for r in records]),
        "user_words": _stats(_words(records, "user", skip_opening=True)),
        "assistant_words": _stats(_words(records, "assistant", skip_opening=True)),
        "users": sorted({r["user"] for r in records}),
        "assistants": sorted({r["assistant"] for r in records}),
        "samples": sorted(records, key=lambda r: r["id"])[:_SAMPLES],
    }


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Simulated conversations",
        "",
        f"- conversations: {report['conversations']}",
        f"- simulated user: {', '.join(report['users']) or 'n/a'}",
        f"- assistant: {', '.join(report['assistants']) or 'n/a'}",
        f"- simulated user turns per conversation: {report['turns']}",
        f"- words per simulated user message: {report['user_words']}",
        f"- words per assistant message: {report['assistant_words']}",
        f"- {_REPLY_CUT}: {report['reply_cut']}",
        "",
        "## End reasons",
        "",
        "| reason | conversations | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {n} | {meaning} |" for k, n, meaning in report["end_reasons"]]
    lines += ["", "## User fidelity", "", _fidelity_summary(report["fidelity"]), ""]
    if report["fidelity"]["rows"]:
        lines += ["| check failed | turns drawn again | failing turns kept | meaning |"]
        lines += ["|---|---|---|---|"]
        lines += [f"| {k} | {n} | {m} | {text} |" for k, n, m, text in report["fidelity"]["rows"]]
    lines += ["", "## Sample transcripts", ""]
    for r in report["samples"]:
        lines += [f"### {r['id']} ({r['end_reason']}, {r['turns']} turn(s))", ""]
        for m in r["messages"]:
            text = m["content"].replace("\n", " ")
            lines.append(f"- **{m['role']}**: {text}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _fidelity_summary(fidelity: dict[str, Any]) -> str:
    return (
        f"{fidelity['affected']} of {fidelity['checked']} checked conversation(s) had a user turn "
        "that failed the fidelity check (empty, assistant-like, or copying the context); such a "
        "turn is drawn again, and a failing turn is kept only after the last retry (an empty one "
        "never: the conversation ends)."
    )


def _html(report: dict[str, Any]) -> str:
    e = html.escape
    fidelity = report["fidelity"]
    fidelity_rows = "".join(
        f"<tr><td>{e(k)}</td><td>{n}</td><td>{m}</td><td>{e(text)}</td></tr>"
        for k, n, m, text in fidelity["rows"]
    )
    fidelity_table = (
        "<table><tr><th>check failed</th><th>turns drawn again</th><th>failing turns kept</th>"
        f"<th>meaning</th></tr>{fidelity_rows}</table>"
        if fidelity_rows
        else ""
    )
    rows = "".join(
        f"<tr><td>{e(k)}</td><td>{n}</td><td>{e(meaning)}</td></tr>"
        for k, n, meaning in report["end_reasons"]
    )
    facts = "".join(
        f"<li>{e(label)}: {e(str(value))}</li>"
        for label, value in (
            ("conversations", report["conversations"]),
            ("simulated user", ", ".join(report["users"]) or "n/a"),
            ("assistant", ", ".join(report["assistants"]) or "n/a"),
            ("simulated user turns per conversation", report["turns"]),
            ("words per simulated user message", report["user_words"]),
            ("words per assistant message", report["assistant_words"]),
            (_REPLY_CUT, report["reply_cut"]),
        )
    )
    samples = ""
    for r in report["samples"]:
        turns = "".join(
            f'<div class="{e(m["role"])}"><b>{e(m["role"])}</b><p>{e(m["content"])}</p></div>'
            for m in r["messages"]
        )
        samples += f"<h3>{e(r['id'])} ({e(r['end_reason'])}, {r['turns']} turn(s))</h3>{turns}"
    style = (
        "body{font-family:sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem}"
        ".user{background:#eef5ff}.assistant{background:#f4f4f4}"
        ".user,.assistant{padding:.4rem .8rem;margin:.3rem 0;border-radius:.4rem}"
        "p{white-space:pre-wrap;margin:.2rem 0}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Simulated conversations</title>"
        f"<style>{style}</style></head><body><h1>Simulated conversations</h1><ul>{facts}</ul>"
        f"<h2>End reasons</h2><table><tr><th>reason</th><th>conversations</th><th>meaning</th>"
        f"</tr>{rows}</table><h2>User fidelity</h2><p>{e(_fidelity_summary(fidelity))}</p>"
        f"{fidelity_table}<h2>Sample transcripts</h2>{samples}</body></html>\n"
    )


def write_report(records: Sequence[dict[str, Any]], out_dir: Path) -> None:
    """Write ``report.md`` and ``report.html`` for ``records`` into ``out_dir``."""
    report = build_report(records)
    write_text(out_dir / "report.md", _markdown(report))
    write_text(out_dir / "report.html", _html(report))
