"""``humanlm report``: evaluation runs side by side, as Markdown and a self-contained HTML page.

Run it as ``humanlm report runs/a runs/b --out report.html``. Each path is an evaluation folder
(with ``results.json``) or a folder holding some (a training run with its evaluations); a
training ``metrics.jsonl`` in the folder (or next to an evaluation folder) gives curves.

The report holds: a Table-1-style table (rows: runs grouped by name, columns: datasets, cells:
response alignment x100 with its 95% interval) with the paper's numbers below it, every
metric with its counts, per-state alignment (table and chart), training curves, the population
metrics (diversity, distribution, detectability; charts), stability over seeds, judge agreement
and persona-dropout drops (``humanlm.reports.population_report``), and excerpts of the best and
worst samples. ``report.md`` links PNG files written next to it; ``report.html``
inlines them as data URIs and needs no network.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment

from humanlm.errors import DataError
from humanlm.eval.samples import SAMPLES_FILE, read_samples
from humanlm.eval.stats import METRICS
from humanlm.files import read_jsonl, write_text
from humanlm.paper import DATASET_ORDER, PAPER_AVG, PAPER_NAMES, PAPER_RESULTS, PAPER_SOURCE
from humanlm.reports.charts import state_alignment_chart, training_chart
from humanlm.reports.population_report import population_figures, population_tables, run_names
from humanlm.states import LATENT_STATES

__all__ = ["EvalRun", "ReportFiles", "Table", "TrainingLog", "load_runs", "write_report"]

logger = logging.getLogger(__name__)

_RESULTS = "results.json"
_METRICS_LOG = "metrics.jsonl"
_EXCERPT = 400
_SAMPLES_SHOWN = 3
_MISSING = "–"


@dataclass(frozen=True)
class EvalRun:
    """One evaluation folder: its ``results.json`` and its latest sample records."""

    path: Path
    results: dict[str, Any]
    samples: list[dict[str, Any]]
    name: str | None = None

    @property
    def label(self) -> str:
        """The run's name in tables: its own, made distinct by ``load_runs`` when it repeats."""
        return self.name or str(self.results.get("name") or self.results.get("model"))


@dataclass(frozen=True)
class TrainingLog:
    """A training ``metrics.jsonl`` and the folder it belongs to."""

    path: Path
    rows: list[dict[str, Any]]


@dataclass
class Table:
    """A table both renderers draw: a title, column names, rows of text cells, a note."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Figure:
    """A PNG with its caption; ``name`` is its file name next to ``report.md``."""

    name: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class ReportFiles:
    """What ``write_report`` wrote."""

    html: Path
    markdown: Path
    images: tuple[Path, ...] = field(default_factory=tuple)


def load_runs(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[EvalRun], list[TrainingLog]]:
    """Find the evaluation folders and training logs under ``paths``.

    Raises:
        DataError: a path does not exist or holds neither an evaluation nor a training log.
    """
    runs: dict[Path, EvalRun] = {}
    logs: dict[Path, TrainingLog] = {}
    for given in paths:
        root = Path(given)
        if not root.is_dir():
            raise DataError("not a folder", file=str(root))
        found = [root / _RESULTS] if (root / _RESULTS).exists() else sorted(root.rglob(_RESULTS))
        for results_path in found:
            if _inside_another_run(results_path.parent, root):
                continue  # a seed-N folder of a --seeds run: its top folder stands for it
            folder = results_path.parent.resolve()
            try:
                results = json.loads(results_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as err:
                raise DataError(
                    f"not a readable results file ({err})", file=str(results_path)
                ) from None
            records = read_samples(folder / SAMPLES_FILE)
            runs[folder] = EvalRun(folder, results, list(records.values()))
        for candidate in (root, root.parent):
            log = candidate / _METRICS_LOG
            if log.exists() and log.resolve() not in logs:
                logs[log.resolve()] = TrainingLog(log.resolve(), read_jsonl(log))
        if not found and not (root / _METRICS_LOG).exists():
            raise DataError(f"no {_RESULTS} or {_METRICS_LOG} in it or below", file=str(root))
    ordered = sorted(runs.values(), key=lambda r: (r.label, str(r.results.get("created"))))
    return _distinct_labels(ordered), list(logs.values())


def _identity(run: EvalRun) -> tuple[str, ...]:
    r = run.results
    return (run.label, str(r.get("dataset")), str(r.get("split")), str(r.get("judge")))


def _distinct_labels(runs: list[EvalRun]) -> list[EvalRun]:
    """Runs that would share a row (same label, data, split and judge) get their folder's name
    added, so no run hides another. Runs of one label on other splits or judges keep it: the
    tables name those by split and judge, and the agreement and robustness views pair them."""
    counts = Counter(_identity(run) for run in runs)
    named: list[EvalRun] = []
    taken: set[str] = set()
    for run in runs:
        label = run.label
        if counts[_identity(run)] > 1:
            label = f"{label} ({run.path.name})"
            n = 2
            while label in taken:
                label, n = f"{run.label} ({run.path.name} #{n})", n + 1
        taken.add(label)
        named.append(dataclasses.replace(run, name=label) if label != run.label else run)
    return named


def _inside_another_run(folder: Path, root: Path) -> bool:
    """Whether a folder between ``folder`` (excluded) and ``root`` holds a ``results.json``."""
    for parent in folder.parents:
        if (parent / _RESULTS).exists():
            return True
        if parent == root or root not in parent.parents:
            return False
    return False


def _cell(summary: Mapping[str, Any] | None) -> str:
    if not summary:
        return _MISSING
    if summary.get("score") is None:
        return f"n/a (0 of {summary.get('examples', 0)} scored)"
    return f"{summary['score']:.2f} [{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"


def _dataset_title(dataset: str) -> str:
    return f"{PAPER_NAMES[dataset]} ({dataset})" if dataset in PAPER_NAMES else dataset


def _sources(run: EvalRun) -> dict[str, dict[str, Any]]:
    return dict(run.results.get("by_data_source") or {})


def _main_table(runs: Sequence[EvalRun]) -> Table:
    found = {source for run in runs for source in _sources(run)}
    datasets = [d for d in DATASET_ORDER if d in found] + sorted(found - set(DATASET_ORDER))
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    # Row names are distinct (load_runs, plus split and judge where a label's runs differ),
    # so every run has its own row.
    for name, run in zip(run_names(runs), runs, strict=True):
        cells.setdefault(name, {})
        for source, part in _sources(run).items():
            cells[name][source] = part["metrics"].get("response_alignment")
    rows = []
    for label, by_source in cells.items():
        scores = [s["score"] for s in by_source.values() if s and s.get("score") is not None]
        avg = f"{sum(scores) / len(scores):.2f}" if scores else _MISSING
        if not by_source:  # a run without any record to score: shown, not left out
            rows.append([label, *(["n/a (nothing scored)"] * (len(datasets) + 1))])
            continue
        rows.append([label, *(_cell(by_source.get(d)) for d in datasets), avg])
    shown = [d for d in datasets if d in PAPER_NAMES]
    if shown:  # the paper's rows, on the datasets it shares with our runs
        for method, numbers in PAPER_RESULTS.items():
            if len(shown) == len(DATASET_ORDER):
                avg = PAPER_AVG[method]  # as published
            else:
                avg = sum(numbers[d] for d in shown) / len(shown)
            row = [f"{numbers[d]:.2f}" if d in numbers else _MISSING for d in datasets]
            rows.append([f"paper: {method}", *row, f"{avg:.2f}"])
    note = (
        "Cells: response alignment x100 [95% bootstrap interval]; Avg: mean over the columns shown."
    )
    if shown:
        note += f" Paper rows: {PAPER_SOURCE}."
    return Table(
        "Response alignment (Table 1 style)",
        ["run", *(_dataset_title(d) for d in datasets), "Avg"],
        rows,
        note,
    )


def _metrics_table(runs: Sequence[EvalRun]) -> Table:
    rows = []
    for run in runs:
        for source, part in _sources(run).items():
            metrics = part["metrics"]
            unscored = " / ".join(
                str(metrics[m]["unscored"]) if m in metrics else _MISSING for m in METRICS
            )
            rows.append(
                [
                    run.label,
                    _dataset_title(source),
                    *(_cell(metrics.get(m)) for m in METRICS),
                    str(part.get("examples", "")),
                    unscored,
                ]
            )
    columns = ["run", "dataset", *(m.replace("_", " ") for m in METRICS), "examples"]
    return Table(
        "All metrics",
        [*columns, "unscored (per metric)"],
        rows,
        "Unscored examples (judge failure or no simulator output) are left out of the means, "
        "never counted as 0; replies are judged leniently (tags if present, else the text after "
        "the thinking) and an empty reply scores 0 (bad_format). "
        "Unscored counts are listed in the order of the metric columns; – = switched off.",
    )


def _state_series(runs: Sequence[EvalRun]) -> list[tuple[str, dict[str, Any]]]:
    series = []
    for run in runs:
        for source, part in _sources(run).items():
            if part.get("states"):
                series.append((f"{run.label} · {source}", part["states"]))
    return series


def _sample_rows(run: EvalRun) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    scored = [
        r for r in run.samples if (r.get("scores") or {}).get("response_alignment") is not None
    ]
    scored.sort(key=lambda r: (r["scores"]["response_alignment"], str(r["example_id"])))
    worst = scored[:_SAMPLES_SHOWN]
    # Distinct examples only, and no "best" that merely ties with the worst ones.
    floor = worst[-1]["scores"]["response_alignment"] if worst else None
    best = [
        r
        for r in reversed(scored[-_SAMPLES_SHOWN:])
        if r not in worst and r["scores"]["response_alignment"] != floor
    ]
    counts = Counter(r["scores"]["response_alignment"] for r in scored)
    return [_excerpt(r, counts) for r in worst], [_excerpt(r, counts) for r in best]


def _clip(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _excerpt(record: Mapping[str, Any], counts: Mapping[float, int]) -> dict[str, Any]:
    verdict = (record.get("verdicts") or {}).get("response_alignment") or {}
    response = record.get("response")
    score = record["scores"]["response_alignment"]
    return {
        "example_id": record["example_id"],
        "data_source": record.get("data_source"),
        "score": 100 * score,
        "ties": counts.get(score, 1) - 1,
        "reason": verdict.get("reason"),
        "thought": _clip(verdict.get("thought")),
        "context": _clip((record.get("context_last") or {}).get("content")),
        "response": _clip(response)
        if response
        else "(invalid format) " + _clip(record.get("generation")),
        "truth": _clip(record.get("ground_truth")),
    }


def _figures(runs: Sequence[EvalRun], logs: Sequence[TrainingLog], *, stem: str) -> list[Figure]:
    figures = []
    series = _state_series(runs)
    if series:
        png = state_alignment_chart(series, LATENT_STATES)
        figures.append(Figure(f"{stem}_state_alignment.png", "State alignment per state", png))
    for i, log in enumerate(logs, start=1):
        title = f"Training: {log.path.parent.name}"
        png = training_chart(log.rows, title=title)
        if png is not None:
            figures.append(Figure(f"{stem}_training_{i}.png", title, png))
    figures += population_figures(runs, stem=stem, figure=Figure)
    return figures


def _build(runs: Sequence[EvalRun], logs: Sequence[TrainingLog], *, out: Path) -> dict[str, Any]:
    states_table = Table(
        "State alignment per state",
        ["run · dataset", *LATENT_STATES],
        [
            [label, *(_cell(states.get(s)) for s in LATENT_STATES)]
            for label, states in _state_series(runs)
        ],
        "Aspects judge: one call scores the response on all six latent states (x100).",
    )
    samples = []
    for run in runs:
        worst, best = _sample_rows(run)
        link = os.path.relpath(run.path / SAMPLES_FILE, out.parent.resolve())
        samples.append(
            {"label": run.label, "path": str(run.path), "link": link, "worst": worst, "best": best}
        )
    return {
        "created": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "runs": [
            {
                "label": run.label,
                "path": str(run.path),
                "model": run.results.get("model"),
                "dataset": run.results.get("dataset"),
                "split": run.results.get("split"),
                "judge": run.results.get("judge"),
                "examples": (run.results.get("counts") or {}).get("examples"),
                "created": run.results.get("created"),
            }
            for run in runs
        ],
        "tables": [_main_table(runs), _metrics_table(runs)] if runs else [],
        "states_table": states_table if states_table.rows else None,
        "population_tables": population_tables(runs, table=Table),
        "samples": samples,
    }


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    lines = [f"## {table.title}", "", "| " + " | ".join(map(_md_cell, table.columns)) + " |"]
    lines.append("|" + "---|" * len(table.columns))
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
    return [*lines, "", table.note, ""] if table.note else [*lines, ""]


def _markdown(content: Mapping[str, Any], figures: Sequence[Figure]) -> str:
    lines = ["# humanlm evaluation report", "", f"Generated {content['created']}.", ""]
    for run in content["runs"]:
        lines.append(
            f"- **{_md_cell(run['label'])}**: {run['dataset']}/{run['split']}, "
            f"{run['examples']} examples, judge {run['judge']} (`{run['path']}`)"
        )
    lines.append("")
    for table in content["tables"]:
        lines += _md_table(table)
    if content["states_table"]:
        lines += _md_table(content["states_table"])
    for table in content["population_tables"]:
        lines += _md_table(table)
    for fig in figures:
        lines += [f"![{fig.caption}]({fig.name})", ""]
    for block in content["samples"]:
        lines += [
            f"## Samples: {_md_cell(block['label'])}",
            "",
            f"All records: [{SAMPLES_FILE}]({block['link']})",
            "",
        ]
        for kind in ("worst", "best"):
            for s in block[kind]:
                lines += [
                    f"- {kind} · `{s['example_id']}` ({s['data_source']}): "
                    f"{s['score']:.1f} ({s['reason']})"
                    + (f", tied with {s['ties']} other samples" if s["ties"] else ""),
                    f"  - simulated: {_md_cell(s['response'])}",
                    f"  - real: {_md_cell(s['truth'])}",
                    f"  - judge: {_md_cell(s['thought'])}",
                ]
        lines.append("")
    return "\n".join(lines)


@cache
def _template() -> Any:
    text = (resources.files("humanlm.reports") / "report.html.jinja").read_text("utf-8")
    return Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(text)


def write_report(
    paths: Iterable[str | os.PathLike[str]], *, out: str | os.PathLike[str] = "report.html"
) -> ReportFiles:
    """Write ``out`` (HTML), a Markdown twin (``out`` with ``.md``) and its PNGs.

    Example:
        >>> files = write_report(["runs/a", "runs/b"], out="report.html")  # doctest: +SKIP

    Raises:
        DataError: a path holds no evaluation and no training log.
    """
    out = Path(out)
    runs, logs = load_runs(paths)
    content = _build(runs, logs, out=out)
    figures = _figures(runs, logs, stem=out.stem)
    images = []
    for fig in figures:
        path = out.parent / fig.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(fig.png)
        images.append(path)
    markdown = out.with_suffix(".md")
    write_text(markdown, _markdown(content, figures))
    write_text(out, _template().render(**content, figures=figures, missing=_MISSING))
    logger.info("wrote %s and %s (%d runs, %d training logs)", out, markdown, len(runs), len(logs))
    return ReportFiles(out, markdown, tuple(images))
