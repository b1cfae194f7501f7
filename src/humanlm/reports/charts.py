"""PNG charts for reports: per-state alignment bars and training curves (matplotlib, no display).

Figures are drawn with ``matplotlib.figure.Figure`` and the Agg canvas directly, so no global
backend is switched and nothing needs a screen. Every chart gives a state the same colour
(``STATE_COLORS``). A state is sampled in only some GRPO steps, so its reward is drawn as markers
on the steps where it was sampled plus a rolling mean over those steps, never as a line that
joins steps across gaps. Losses of different phases (warm-up, SFT, GRPO) get separate axes:
their scales have nothing in common.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "OVERALL_COLOR",
    "STATE_COLORS",
    "draw_rewards",
    "metric_curve",
    "png_bytes",
    "rolling_mean",
    "state_alignment_chart",
    "training_chart",
]

_DPI = 110
# One colour per state in every chart (matplotlib's tab10 order); the overall reward is black.
STATE_COLORS = {
    "stance": "#1f77b4",
    "emotion": "#ff7f0e",
    "belief": "#2ca02c",
    "value": "#d62728",
    "goal": "#9467bd",
    "communication": "#8c564b",
    "response": "#e377c2",
}
OVERALL_COLOR = "#000000"
_WINDOW = 5  # rolling mean over this many sampled steps


def png_bytes(fig: Figure) -> bytes:
    """``fig`` rendered as PNG bytes (Agg canvas, no display needed)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def rolling_mean(values: Sequence[float], window: int = _WINDOW) -> list[float]:
    """Trailing mean of each value with up to ``window - 1`` values before it."""
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1) : i + 1]
        out.append(sum(part) / len(part))
    return out


def state_alignment_chart(
    series: Sequence[tuple[str, Mapping[str, Mapping[str, Any]]]], states: Sequence[str]
) -> bytes:
    """Grouped bars: one group per state, one bar per run, 95% intervals as error bars.

    Bars of a run share one hatch pattern; each state's tick label has the state's colour.

    Args:
        series: ``(label, {state: summary})`` per run; a summary has ``score``, ``ci_low``,
            ``ci_high`` (0-100) and may be unscored (``score`` None: no bar) or come without
            an interval (``ci_low`` None: no error bar).
        states: the states on the x axis, in order.
    """
    fig = Figure(figsize=(max(6.0, 1.3 * len(states) + 1), 4.2))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    hatches = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")
    for i, (label, summaries) in enumerate(series):
        xs, heights, colors = [], [], []
        err_x, err_y, low, high = [], [], [], []  # the bars that have an interval
        for j, state in enumerate(states):
            s = summaries.get(state) or {}
            if s.get("score") is None:
                continue
            x = j - 0.4 + width * (i + 0.5)
            xs.append(x)
            heights.append(s["score"])
            colors.append(STATE_COLORS.get(state, "#7f7f7f"))
            if s.get("ci_low") is not None:
                err_x.append(x)
                err_y.append(s["score"])
                low.append(s["score"] - s["ci_low"])
                high.append(s["ci_high"] - s["score"])
        ax.bar(xs, heights, width=width, color=colors, edgecolor="white",
               hatch=hatches[i % len(hatches)], label=label)  # fmt: skip
        if err_x:
            ax.errorbar(err_x, err_y, yerr=[low, high], fmt="none", ecolor="black", capsize=3)
    ax.set_xticks(range(len(states)), list(states))
    for tick, state in zip(ax.get_xticklabels(), states, strict=True):
        tick.set_color(STATE_COLORS.get(state, "#000000"))
    ax.set_ylabel("state alignment (x100)")
    ax.set_title("State alignment per latent state (95% bootstrap intervals where n allows)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    return png_bytes(fig)


def metric_curve(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` over metrics rows, skipping rows without a number for it."""
    points = [
        (float(r["step"]), float(r[key]))
        for r in rows
        if isinstance(r.get(key), int | float) and isinstance(r.get("step"), int | float)
    ]
    return [p[0] for p in points], [p[1] for p in points]


def draw_rewards(ax: Any, rows: Sequence[Mapping[str, Any]], *, overall_label: str) -> bool:
    """Draw ``reward`` and every ``state_reward/<state>`` of ``rows`` on ``ax``; False if none."""
    drawn = False
    states = sorted(
        {k.removeprefix("state_reward/") for r in rows for k in r if k.startswith("state_reward/")}
    )
    for state in states:
        steps, values = metric_curve(rows, f"state_reward/{state}")
        if not steps:
            continue
        color = STATE_COLORS.get(state, "#7f7f7f")
        ax.scatter(steps, values, s=12, color=color, alpha=0.45)
        ax.plot(steps, rolling_mean(values), color=color, linewidth=1.5, label=state)
        drawn = True
    steps, values = metric_curve(rows, "reward")
    if steps:
        ax.plot(steps, values, color=OVERALL_COLOR, linewidth=0.8, alpha=0.35)
        ax.plot(
            steps, rolling_mean(values), color=OVERALL_COLOR, linewidth=2.5, label=overall_label
        )
        drawn = True
    return drawn


def training_chart(rows: Sequence[Mapping[str, Any]], *, title: str) -> bytes | None:
    """Loss and reward curves from a training ``metrics.jsonl`` (``None`` when it has neither).

    One loss panel per phase (warm-up and training losses have unrelated scales), then one
    reward panel: ``reward`` and every ``state_reward/<state>``, drawn as in ``reward_chart``.
    """
    phases = list(dict.fromkeys(str(r.get("phase", "train")) for r in rows))
    losses = []
    for phase in phases:
        curve = metric_curve([r for r in rows if str(r.get("phase", "train")) == phase], "loss")
        if curve[0]:
            losses.append((phase, curve))
    reward_keys = ["reward"] + sorted({k for r in rows for k in r if k.startswith("state_reward/")})
    has_reward = any(isinstance(r.get(k), int | float) for r in rows for k in reward_keys)
    if not (losses or has_reward):
        return None
    panels = len(losses) + int(has_reward)
    fig = Figure(figsize=(4.6 * panels, 3.8))
    axes = list(fig.subplots(1, panels, squeeze=False)[0])
    for ax, (phase, (steps, values)) in zip(axes, losses, strict=False):
        ax.plot(steps, values, marker=".", color=OVERALL_COLOR, linewidth=1)
        ax.set(title=f"loss ({phase})", xlabel="step")
        ax.grid(alpha=0.3)
    if has_reward:
        ax = axes[-1]
        train_rows = [r for r in rows if str(r.get("phase", "train")) != "warmup"]
        draw_rewards(ax, train_rows, overall_label="reward")
        ax.set(title="reward (overall and per state)", xlabel="step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return png_bytes(fig)
