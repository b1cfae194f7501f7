"""Run scores from sample records: means x 100 with seeded bootstrap 95% intervals.

A metric's run score is the mean of its scored examples x 100 (as in the paper). Unscored
examples (the judge failed, or the simulator gave no output) are counted and left out; they are
never averaged in as 0. An output with no reply text at all is a real 0 (``bad_format``), since
that is the simulator's fault.

Interval: percentile bootstrap. Draw ``resamples`` (default 1,000) samples of the scored values
with replacement, each as large as the original, with ``numpy.random.default_rng(seed)``; the
interval is the 2.5th and 97.5th percentile of their means (numpy's default linear
interpolation), x 100. With one scored value, or all values equal, it collapses to the score.

Example:
    >>> summarize([0.2, 0.4, None]).score
    30.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from humanlm.states import LATENT_STATES

__all__ = [
    "BOOTSTRAP_LEVEL",
    "METRICS",
    "MetricSummary",
    "aggregate_records",
    "bootstrap_interval",
    "summarize",
]

METRICS = ("response_alignment", "state_alignment", "embedding_similarity", "valid_format")
BOOTSTRAP_LEVEL = 0.95
_DIGITS = 4


@dataclass(frozen=True)
class MetricSummary:
    """One metric over a set of examples (scores on the 0-100 scale).

    Attributes:
        score: mean of the scored examples x 100, or ``None`` when none was scored.
        ci_low, ci_high: the bootstrap 95% interval (``None`` when nothing was scored).
        examples: examples considered.
        scored: examples with a score.
        unscored: examples without one (``examples - scored``).
    """

    score: float | None
    ci_low: float | None
    ci_high: float | None
    examples: int
    scored: int
    unscored: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_interval(
    values: Sequence[float], *, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean of ``values`` (same scale as the values).

    Raises:
        ValueError: ``values`` is empty.
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap_interval needs at least one value")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - BOOTSTRAP_LEVEL) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def summarize(
    values: Iterable[float | None], *, resamples: int = 1000, seed: int = 0
) -> MetricSummary:
    """Mean x 100 and its interval over the non-``None`` values; ``None`` counts as unscored."""
    listed = list(values)
    scored = [float(v) for v in listed if v is not None]
    if not scored:
        return MetricSummary(None, None, None, len(listed), 0, len(listed))
    low, high = bootstrap_interval(scored, resamples=resamples, seed=seed)
    mean = float(np.mean(scored))
    return MetricSummary(
        score=round(mean * 100, _DIGITS),
        ci_low=round(low * 100, _DIGITS),
        ci_high=round(high * 100, _DIGITS),
        examples=len(listed),
        scored=len(scored),
        unscored=len(listed) - len(scored),
    )


def _summaries(
    records: Sequence[Mapping[str, Any]],
    *,
    metrics: Sequence[str] | None,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    if metrics is None:
        metrics = [m for m in METRICS if any(m in (r.get("scores") or {}) for r in records)]
    states = LATENT_STATES if "state_alignment" in metrics else ()

    def column(key: str, name: str) -> list[float | None]:
        return [(r.get(key) or {}).get(name) for r in records]

    return {
        "metrics": {
            m: summarize(column("scores", m), resamples=resamples, seed=seed).to_dict()
            for m in metrics
        },
        "states": {
            s: summarize(column("state_scores", s), resamples=resamples, seed=seed).to_dict()
            for s in states
        },
    }


def aggregate_records(
    records: Sequence[Mapping[str, Any]],
    *,
    metrics: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Run-level summaries of sample records, overall and per data source.

    Args:
        records: sample records (``scores``, ``state_scores``, ``data_source``, ``error``).
        metrics: the metrics that were switched on (``None``: those any record carries);
            switched-off metrics are absent from the result, not unscored.
        resamples, seed: of the bootstrap.

    Returns:
        ``{"metrics": {metric: summary}, "states": {state: summary}, "by_data_source":
        {source: {"metrics", "states", "examples"}}, "failed": n}``; per-state summaries come
        with ``state_alignment``.
    """
    if metrics is None:
        metrics = [m for m in METRICS if any(m in (r.get("scores") or {}) for r in records)]
    kwargs = {"metrics": metrics, "resamples": resamples, "seed": seed}
    overall = _summaries(records, **kwargs)
    sources = sorted({str(r.get("data_source")) for r in records})
    by_source = {}
    for source in sources:
        subset = [r for r in records if str(r.get("data_source")) == source]
        by_source[source] = {
            "examples": len(subset),
            **_summaries(subset, **kwargs),
        }
    return {
        **overall,
        "by_data_source": by_source,
        "failed": sum(1 for r in records if r.get("error")),
    }
