"""Stability over seeds: the mean and standard error of every metric of K runs of one setting.

``humanlm eval --seeds K`` evaluates the same examples K times with seeds ``seed`` ...
``seed + K - 1``; each run's ``results.json`` metrics are flattened to dotted names
(``response_alignment``, ``diversity.simulated.distinct_2``, ``detectability.accuracy``, ...)
and summarised: mean, standard error (sample standard deviation / sqrt(K); ``None`` for one
run) and the values per seed.

Example:
    >>> flatten_metrics({"response_alignment": {"score": 20.0}, "detectability": {"accuracy": 61.0}})
    {'response_alignment': 20.0, 'detectability.accuracy': 61.0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["flatten_metrics", "stability_summary"]

# Leaves that are counts or settings, not measurements.
_NOT_MEASURES = {
    "replies", "tokens", "left_out", "pairs", "folds", "mattr_window", "hdd_sample", "examples",
    "scored", "unscored", "ci_low", "ci_high", "contexts",
}  # fmt: skip
_DIGITS = 4


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric measurements in a ``results.json`` ``metrics`` block, by dotted name.

    A per-example metric summary (``{"score": ...}``) becomes its name alone.
    """
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if "score" in value:
                if isinstance(value["score"], int | float):
                    flat[name] = float(value["score"])
                continue
            flat.update(flatten_metrics(value, prefix=f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if key not in _NOT_MEASURES:
                flat[name] = float(value)
    return flat


def stability_summary(runs: Sequence[tuple[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """Mean and standard error of each metric over runs given as ``(seed, metrics block)``.

    A metric missing from a run (unscored there) is summarised over the runs that have it.
    """
    flats = [(seed, flatten_metrics(metrics)) for seed, metrics in runs]
    names = list(dict.fromkeys(name for _, flat in flats for name in flat))
    summary = {}
    for name in names:
        values = [flat[name] for _, flat in flats if name in flat]
        mean = sum(values) / len(values)
        se = None
        if len(values) > 1:
            var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
            se = round(math.sqrt(var / len(values)), _DIGITS)
        summary[name] = {
            "mean": round(mean, _DIGITS),
            "se": se,
            "runs": len(values),
            "values": {str(seed): flat[name] for seed, flat in flats if name in flat},
        }
    return {
        "seeds": [seed for seed, _ in runs],
        "method": "mean and standard error (sample sd / sqrt(runs)) over seeds",
        "metrics": summary,
    }
