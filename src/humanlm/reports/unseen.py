"""Report section: users seen in training against users never seen, side by side.

``humanlm data prepare --holdout-users`` moves every row of some users into ``test_unseen``, so
no split the simulator was trained on holds them. Runs of one name and dataset on ``test`` and
``test_unseen`` under one judge are paired; for every per-example metric the table gives both
scores and the drop (test minus test_unseen) with a 95% interval.

Interval of the drop: the two splits hold different users, so their examples are resampled
independently: ``resamples`` times, each split's scored values are drawn with replacement (as
many as it has, ``numpy.random.default_rng(seed)``) and the difference of the two means taken;
the interval is the 2.5th and 97.5th percentile of those differences, x 100. Resamples and seed
are the seen run's (``results.json`` ``bootstrap``). Like every interval in the report it is
shown only when both sides have ``MIN_INTERVAL_N`` scored examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from humanlm.data.prepare import UNSEEN_SPLIT
from humanlm.eval.stats import BOOTSTRAP_LEVEL, METRICS
from humanlm.reports.cells import MIN_INTERVAL_N, MISSING, summary_cell

__all__ = ["drop_interval", "unseen_rows", "unseen_table"]

_SEEN_SPLIT = "test"


def drop_interval(
    seen: Sequence[float], unseen: Sequence[float], *, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of ``mean(seen) - mean(unseen)`` (the values' scale).

    Raises:
        ValueError: either side is empty.
    """
    a, b = np.asarray(seen, dtype=float), np.asarray(unseen, dtype=float)
    if not a.size or not b.size:
        raise ValueError("drop_interval needs at least one value on each side")
    rng = np.random.default_rng(seed)
    means_a = a[rng.integers(0, a.size, size=(resamples, a.size))].mean(axis=1)
    means_b = b[rng.integers(0, b.size, size=(resamples, b.size))].mean(axis=1)
    tail = (1.0 - BOOTSTRAP_LEVEL) / 2 * 100
    low, high = np.percentile(means_a - means_b, [tail, 100 - tail])
    return float(low), float(high)


def _scored(run: Any, metric: str) -> list[float]:
    values = ((r.get("scores") or {}).get(metric) for r in run.samples)
    return [float(v) for v in values if v is not None]


def unseen_rows(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """Pairs of runs of one name, dataset and judge on ``test`` and ``test_unseen``.

    Returns:
        One dict per pair and metric: ``run``, ``dataset``, ``judge``, ``metric``, ``seen`` and
        ``unseen`` (the runs' metric summaries), ``drop`` (seen - unseen score) and ``ci_low``,
        ``ci_high`` (its interval; ``None`` when a side has no scored example).
    """
    latest: dict[tuple[str, str, str, str], Any] = {}
    for run in runs:  # sorted by creation time, so a later run of the same key wins
        results = run.results
        key = (run.label, str(results.get("dataset")), str(results.get("judge")),
               str(results.get("split")))  # fmt: skip
        latest[key] = run
    rows = []
    for (label, dataset, judge, split), seen in latest.items():
        unseen = latest.get((label, dataset, judge, UNSEEN_SPLIT))
        if split != _SEEN_SPLIT or unseen is None:
            continue
        bootstrap = seen.results.get("bootstrap") or {}
        for metric in METRICS:
            a = (seen.results.get("metrics") or {}).get(metric)
            b = (unseen.results.get("metrics") or {}).get(metric)
            if a is None or b is None:
                continue
            drop = low = high = None
            if a.get("score") is not None and b.get("score") is not None:
                drop = a["score"] - b["score"]
            values = _scored(seen, metric), _scored(unseen, metric)
            if all(values):
                low, high = (
                    100 * x
                    for x in drop_interval(
                        *values,
                        resamples=int(bootstrap.get("resamples", 1000)),
                        seed=int(bootstrap.get("seed", 0)),
                    )
                )
            rows.append(
                {"run": label, "dataset": dataset, "judge": judge, "metric": metric,
                 "seen": a, "unseen": b, "drop": drop, "ci_low": low, "ci_high": high}
            )  # fmt: skip
    return rows


def _drop_cell(row: dict[str, Any]) -> str:
    if row["drop"] is None:
        return MISSING
    n = min(row["seen"].get("scored") or 0, row["unseen"].get("scored") or 0)
    if row["ci_low"] is None or n < MIN_INTERVAL_N:
        return f"{row['drop']:.2f}"
    return f"{row['drop']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"


def unseen_table(runs: Sequence[Any], table: Any) -> Any | None:
    """The seen/unseen table (``table``: the report's table class); ``None`` without pairs."""
    rows = [
        [r["run"], r["dataset"], r["judge"].split("@")[0], r["metric"], summary_cell(r["seen"]),
         summary_cell(r["unseen"]), _drop_cell(r)]
        for r in unseen_rows(runs)
    ]  # fmt: skip
    if not rows:
        return None
    return table(
        "Users never seen: test vs test_unseen",
        ["run", "dataset", "judge", "metric", "test (seen)", "test_unseen", "drop [95%]"],
        rows,
        "The same model on test (users also in its training data) and on test_unseen (users "
        "held out by data prepare --holdout-users: in no split it was trained on). drop = test "
        "- test_unseen; its 95% interval resamples the two sets independently (bootstrap) and "
        f"is shown when both have n >= {MIN_INTERVAL_N}. An interval above 0: the model does "
        "worse on people it has not seen.",
    )
