"""PNG charts for reports: per-state alignment bars and training curves (matplotlib, no display).

Figures are drawn with ``matplotlib.figure.Figure`` and the Agg canvas directly, so no global
backend is switched and nothing needs a screen.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["state_alignment_chart", "training_chart"]

_DPI = 110


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def state_alignment_chart(
    series: Sequence[tuple[str, Mapping[str, Mapping[str, Any]]]], states: Sequence[str]
) -> bytes:
    """Grouped bars: one group per state, one bar per run, 95% intervals as error bars.

    Args:
        series: ``(label, {state: summary})`` per run; a summary has ``score``, ``ci_low``,
            ``ci_high`` (0-100) and may be unscored (``score`` None: no bar).
        states: the states on the x axis, in order.
    """
    fig = Figure(figsize=(max(6.0, 1.3 * len(states) + 1), 4.2))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for i, (label, summaries) in enumerate(series):
        xs, heights, low, high = [], [], [], []
        for j, state in enumerate(states):
            s = summaries.get(state) or {}
            if s.get("score") is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            heights.append(s["score"])
            low.append(s["score"] - s["ci_low"])
            high.append(s["ci_high"] - s["score"])
        ax.bar(xs, heights, width=width, yerr=[low, high], capsize=3, label=label)
    ax.set_xticks(range(len(states)), list(states))
    ax.set_ylabel("state alignment (x100)")
    ax.set_title("State alignment per latent state (95% bootstrap intervals)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    return _png(fig)


def _curve(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [
        (float(r["step"]), float(r[key]))
        for r in rows
        if isinstance(r.get(key), int | float) and isinstance(r.get("step"), int | float)
    ]
    return [p[0] for p in points], [p[1] for p in points]


def training_chart(rows: Sequence[Mapping[str, Any]], *, title: str) -> bytes | None:
    """Loss and reward curves from a training ``metrics.jsonl`` (``None`` when it has neither).

    Left panel: ``loss`` per phase. Right panel: ``reward`` and every ``state_reward/<state>``.
    """
    phases = list(dict.fromkeys(str(r.get("phase", "train")) for r in rows))
    reward_keys = ["reward"] + sorted({k for r in rows for k in r if k.startswith("state_reward/")})
    has_loss = any(isinstance(r.get("loss"), int | float) for r in rows)
    has_reward = any(isinstance(r.get(k), int | float) for r in rows for k in reward_keys)
    if not (has_loss or has_reward):
        return None
    fig = Figure(figsize=(11, 3.8))
    loss_ax, reward_ax = fig.subplots(1, 2)
    for phase in phases:
        steps, values = _curve([r for r in rows if str(r.get("phase", "train")) == phase], "loss")
        if steps:
            loss_ax.plot(steps, values, marker=".", label=phase)
    loss_ax.set_title("loss")
    loss_ax.set_xlabel("step")
    for key in reward_keys:
        steps, values = _curve(rows, key)
        if steps:
            reward_ax.plot(steps, values, marker=".", label=key.removeprefix("state_reward/"))
    reward_ax.set_title("reward (overall and per state)")
    reward_ax.set_xlabel("step")
    for ax in (loss_ax, reward_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    return _png(fig)
