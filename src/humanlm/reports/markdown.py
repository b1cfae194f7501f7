"""The report's Markdown twin: the same tables, figures and samples as ``report.html``.

Text that comes from runs (run names, dataset ids, paths, replies) is escaped, so a name such
as ``a|b *x*`` neither splits a table cell nor turns into emphasis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from humanlm.eval.samples import SAMPLES_FILE

__all__ = ["md_code", "md_text", "render_markdown"]

# CommonMark lets a backslash escape any ASCII punctuation; these are the characters that can
# start emphasis, code, links, HTML, entities, strikethrough or a table cell inside a line.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def md_text(text: object) -> str:
    """``text`` on one line, with Markdown's inline special characters escaped."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def md_code(text: object) -> str:
    """``text`` as an inline code span, fenced by more backticks than it contains."""
    text = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _table(table: Any) -> list[str]:
    # Titles and notes are the report's own words; columns and cells carry run and data names.
    lines = [f"## {table.title}", "", "| " + " | ".join(map(md_text, table.columns)) + " |"]
    lines.append("|" + "---|" * len(table.columns))
    lines += ["| " + " | ".join(map(md_text, row)) + " |" for row in table.rows]
    return [*lines, "", table.note, ""] if table.note else [*lines, ""]


def _samples(block: Mapping[str, Any]) -> list[str]:
    lines = [
        f"## Samples: {md_text(block['label'])}",
        "",
        f"All records: [{md_text(SAMPLES_FILE)}]({quote(block['link'])})",
        "",
    ]
    for kind in ("worst", "best"):
        for s in block[kind]:
            ties = f", tied with {s['ties']} other samples" if s["ties"] else ""
            lines += [
                f"- {kind} · {md_code(s['example_id'])} ({md_text(s['data_source'])}): "
                f"{s['score']:.1f} ({md_text(s['reason'])}){ties}",
                f"  - simulated: {md_text(s['response'])}",
                f"  - real: {md_text(s['truth'])}",
                f"  - judge: {md_text(s['thought'])}",
            ]
        if not block[kind]:
            lines.append(f"- {kind}: {md_text(block['empty'][kind])}")
    return [*lines, ""]


def render_markdown(content: Mapping[str, Any], figures: Sequence[Any]) -> str:
    """``report.md`` from the content ``report.html`` is rendered from, and the figures."""
    lines = ["# humanlm evaluation report", "", f"Generated {content['created']}.", ""]
    for run in content["runs"]:
        lines.append(
            f"- **{md_text(run['label'])}**: {md_text(run['data'])}, {run['examples']} examples, "
            f"judge {md_text(run['judge'])} ({md_code(run['path'])})"
        )
    lines.append("")
    tables = [*content["tables"], content["states_table"], *content["population_tables"]]
    for table in tables:
        if table is not None:
            lines += _table(table)
    for fig in figures:
        lines += [f"![{md_text(fig.caption)}]({quote(fig.name)})", ""]
    for block in content["samples"]:
        lines += _samples(block)
    return "\n".join(lines)
