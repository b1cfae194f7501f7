"""PNG charts of the population metrics: diversity ratios, detectability, lengths, verdicts.

Drawn like ``humanlm.reports.charts``: ``matplotlib.figure.Figure`` on the Agg canvas, no display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from humanlm.reports.charts import png_bytes

__all__ = ["detectability_chart", "diversity_chart", "length_chart", "verdict_chart"]


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2,
                  frameon=False)  # fmt: skip


def diversity_chart(series: Sequence[tuple[str, Mapping[str, float | None]]]) -> bytes:
    """Grouped bars of simulated / real per diversity measure, one bar per run; 1 = as real."""
    measures = list(series[0][1]) if series else []
    fig = Figure(figsize=(max(6.0, 1.4 * len(measures) + 1), 4.2))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for i, (label, ratios) in enumerate(series):
        xs = [j - 0.4 + width * (i + 0.5) for j, m in enumerate(measures) if ratios.get(m)]
        heights = [ratios[m] for m in measures if ratios.get(m)]
        ax.bar(xs, heights, width=width, label=label)
    ax.axhline(1.0, color="black", linewidth=1, linestyle="--")
    ax.set_yscale("log")  # a ratio: 0.5 and 2 are equally far from 1
    ax.set_xticks(range(len(measures)), measures)
    ax.set_ylabel("simulated / real (log scale)")
    ax.set_title("Diversity relative to the real replies (dashed: equal)")
    ax.grid(axis="y", alpha=0.3)
    _legend(ax)
    return png_bytes(fig)


def detectability_chart(series: Sequence[tuple[str, Mapping[str, float | None]]]) -> bytes:
    """Horizontal bars of each detector's accuracy per run, with chance (50) marked.

    Args:
        series: ``(label, {detector: accuracy x100 or None})`` per run; ``None`` (too few pairs,
            or nothing scored) is written as "n/a" where its bar would be, never drawn as 0.
    """
    detectors = list(dict.fromkeys(name for _, numbers in series for name in numbers))
    fig = Figure(figsize=(7.0, 0.5 * len(series) * max(1, len(detectors)) + 1.6))
    ax = fig.add_subplot()
    height = 0.8 / max(1, len(detectors))
    colors = ("tab:red", "tab:purple")
    for k, detector in enumerate(detectors):
        ys = [i - 0.4 + height * (k + 0.5) for i in range(len(series))]
        values = [numbers.get(detector) for _, numbers in series]
        ax.barh([y for y, v in zip(ys, values, strict=True) if v is not None],
                [v for v in values if v is not None], height=height,
                color=colors[k % len(colors)], label=detector)  # fmt: skip
        for y, (_, numbers) in zip(ys, series, strict=True):
            if detector in numbers and numbers[detector] is None:
                ax.text(1, y, f"{detector}: n/a", va="center", fontsize=8, color="#57606a")
    ax.axvline(50, color="black", linewidth=1, linestyle="--")
    ax.set_yticks(range(len(series)), [label for label, _ in series], fontsize=8)
    ax.invert_yaxis()  # top to bottom in the table's order
    ax.set_xlim(0, 100)
    ax.set_xlabel("detector accuracy (x100; dashed: chance)")
    ax.set_title("Detectability: can a detector tell simulated from real?")
    if len(detectors) > 1:
        _legend(ax)
    return png_bytes(fig)


def length_chart(series: Sequence[tuple[str, Sequence[int], Sequence[int]]]) -> bytes:
    """Histograms of reply length in words: one panel per run, simulated over real."""
    rows = (len(series) + 2) // 3
    fig = Figure(figsize=(5.0 * min(3, len(series)), 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, min(3, len(series)), squeeze=False).ravel()
    for ax, (label, simulated, real) in zip(axes, series, strict=False):
        top = max([*simulated, *real, 1])
        bins = np.linspace(0, top, 21)
        ax.hist(real, bins=bins, alpha=0.55, label="real", color="tab:blue")
        ax.hist(simulated, bins=bins, alpha=0.55, label="simulated", color="tab:orange")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("words per reply")
        ax.legend(fontsize=8)
    for ax in axes[len(series) :]:
        ax.set_visible(False)
    return png_bytes(fig)


def verdict_chart(
    series: Sequence[tuple[str, Mapping[str, Any]]], verdicts: Sequence[str]
) -> bytes:
    """Grouped bars of verdict shares (%): the real replies first, then each run's simulated."""
    fig = Figure(figsize=(max(6.0, 1.2 * len(verdicts) + 1), 4.2))
    ax = fig.add_subplot()
    reals = [(label, v["real"]) for label, v in series]
    if all(shares == reals[0][1] for _, shares in reals):  # the same examples: one real bar
        reals = [("real", reals[0][1])]
    else:
        reals = [(f"real · {label}", shares) for label, shares in reals]
    bars = [*reals, *((label, v["simulated"]) for label, v in series)]
    width = 0.8 / len(bars)
    for i, (label, shares) in enumerate(bars):
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(verdicts))]
        ax.bar(xs, [100 * shares[v] for v in verdicts], width=width, label=label,
               hatch="//" if i < len(reals) else None)  # fmt: skip
    ax.set_xticks(range(len(verdicts)), list(verdicts))
    ax.set_ylabel("% of replies")
    ax.set_title("AITA verdicts: real replies and simulated ones")
    ax.grid(axis="y", alpha=0.3)
    _legend(ax)
    return png_bytes(fig)
