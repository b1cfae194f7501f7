"""``humanlm report``: put evaluation runs side by side in ``report.md`` and ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["report"]

_HELP = """Write a report of evaluation runs: Markdown plus a self-contained HTML page.

Each RUN_DIR is an evaluation folder (results.json) or a folder holding some, e.g. a training
run with its evaluations (its metrics.jsonl gives training curves). The report has a
Table-1-style table (n per cell; intervals from n=10) with the paper's rows for the datasets
the runs cover, all metrics with counts, per-state alignment (table and chart), training
curves, diversity / distribution / detectability (tables and charts drawn from them),
stability over seeds (--seeds runs), judge agreement (runs of one name under two judges, e.g.
a run and its --rescore: Spearman, Kendall, same system ranking), persona-dropout drops (runs
of one name on test and test_dropout) and the best and worst samples (ties said as such).
report.md is written next to the HTML file, with its PNGs.

\b
Examples:
  humanlm report runs/20260101-120000_eval-reddit
  humanlm report runs/*_eval-* --out reports/table1.html
"""


def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Evaluation or training run folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
) -> None:
    from humanlm.reports.report import write_report

    files = write_report(run_dirs, out=out)
    typer.echo(f"wrote {files.html} and {files.markdown}")
    for image in files.images:
        typer.echo(f"  chart: {image}")


report.__doc__ = _HELP
