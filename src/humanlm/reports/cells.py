"""How a report cell shows a metric summary: the score, its n, and its interval where n allows.

Every table of ``humanlm report`` draws summaries this way, so a cell means the same in each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MIN_INTERVAL_N", "MISSING", "shown_summary", "summary_cell"]

MISSING = "–"
# Intervals are shown from this many scored examples on. Below it the percentile bootstrap of
# eval/stats.py has few distinct resampled means (n=2 gives three) and its 95% interval covers
# the true mean far less often than 95%, so a cell shows the mean and n only.
MIN_INTERVAL_N = 10


def shown_summary(summary: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A metric summary as tables and charts show it: no interval below ``MIN_INTERVAL_N``."""
    if not summary:
        return None
    shown = dict(summary)
    if (summary.get("scored") or 0) < MIN_INTERVAL_N:
        shown["ci_low"] = shown["ci_high"] = None
    return shown


def summary_cell(summary: Mapping[str, Any] | None) -> str:
    """``score [low, high] n=scored``; without the interval below ``MIN_INTERVAL_N``."""
    shown = shown_summary(summary)
    if shown is None:
        return MISSING
    if shown.get("score") is None:
        return f"n/a (0 of {shown.get('examples', 0)} scored)"
    n = f"n={shown.get('scored', '?')}"
    if shown["ci_low"] is None:
        return f"{shown['score']:.2f} {n}"
    return f"{shown['score']:.2f} [{shown['ci_low']:.2f}, {shown['ci_high']:.2f}] {n}"
