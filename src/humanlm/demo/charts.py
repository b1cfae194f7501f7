"""The demo's training charts: each method's reward curves and each phase's loss, side by side.

Built from the same pieces as the eval report's training chart (``humanlm.reports.charts``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from humanlm.reports.charts import OVERALL_COLOR, draw_rewards, metric_curve, png_bytes

__all__ = ["loss_chart", "reward_chart"]


def reward_chart(
    panels: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], *, title: str
) -> bytes | None:
    """One reward panel per training run (``(title, metrics rows)``); ``None`` without rewards.

    Dots: a state's mean reward on each step where it was sampled; line: its rolling mean over
    those steps (window 5). Black: the step's mean reward over all sampled rows.
    """
    shown = [(t, rows) for t, rows in panels if any("reward" in r for r in rows)]
    if not shown:
        return None
    fig = Figure(figsize=(6.2 * len(shown), 4.2))
    axes = fig.subplots(1, len(shown), squeeze=False)[0]
    for ax, (panel_title, rows) in zip(axes, shown, strict=True):
        draw_rewards(ax, rows, overall_label="all rows (rolling mean)")
        ax.set(title=panel_title, xlabel="step", ylabel="mean reward")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    fig.suptitle(title)
    return png_bytes(fig)


def loss_chart(
    panels: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], *, title: str
) -> bytes | None:
    """One loss panel per phase (``(title, rows with step and loss)``); ``None`` without losses."""
    shown = [(t, metric_curve(rows, "loss")) for t, rows in panels]
    shown = [(t, curve) for t, curve in shown if curve[0]]
    if not shown:
        return None
    fig = Figure(figsize=(4.2 * len(shown), 3.6))
    axes = fig.subplots(1, len(shown), squeeze=False)[0]
    for ax, (panel_title, (steps, values)) in zip(axes, shown, strict=True):
        ax.plot(steps, values, marker=".", color=OVERALL_COLOR, linewidth=1)
        ax.set(title=panel_title, xlabel="step", ylabel="loss")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return png_bytes(fig)
