"""Run-score arithmetic: means x 100, bootstrap intervals, unscored never counted as 0."""

from __future__ import annotations

import numpy as np
import pytest

from humanlm.eval.stats import aggregate_records, bootstrap_interval, summarize


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.2, 0.4, None], (30.0, 2, 1)),  # unscored left out, not a 0 (would give 20.0)
        ([0.0, 0.0, 0.6], (20.0, 3, 0)),  # real zeros (bad format) do count
        ([1.0], (100.0, 1, 0)),  # one example
        ([None, None], (None, 0, 2)),  # nothing scored
        ([], (None, 0, 0)),  # no examples
    ],
)
def test_summarize_mean_and_counts(values, expected):
    s = summarize(values)
    assert (s.score, s.scored, s.unscored) == expected
    assert s.examples == len(values)


@pytest.mark.parametrize(
    ("values", "interval"),
    [
        ([0.5], (50.0, 50.0)),  # one value: every resample is that value
        ([0.3, 0.3, 0.3], (30.0, 30.0)),  # equal values: no spread
        # Two values 0 and 1: resample means are 0, 0.5 or 1 with chances 1/4, 1/2, 1/4, so
        # the 2.5th percentile of 1000 means is 0 and the 97.5th is 1.
        ([0.0, 1.0], (0.0, 100.0)),
        ([None, 0.0, 1.0], (0.0, 100.0)),  # unscored left out of the resamples
    ],
)
def test_interval_hand_computed(values, interval):
    s = summarize(values)
    assert (s.ci_low, s.ci_high) == interval


def test_interval_is_the_documented_percentile_bootstrap():
    values = [0.1, 0.9, 0.4, 0.4, 0.0, 0.7]
    rng = np.random.default_rng(7)
    means = np.asarray(values)[rng.integers(0, 6, size=(1000, 6))].mean(axis=1)
    expected = tuple(np.percentile(means, [2.5, 97.5]))
    assert bootstrap_interval(values, resamples=1000, seed=7) == pytest.approx(expected)
    assert bootstrap_interval(values, seed=7) == bootstrap_interval(values, seed=7)  # seeded


def test_interval_matches_the_normal_approximation_for_large_samples():
    values = [1.0] * 120 + [0.0] * 280  # p = 0.3, n = 400: half-width 1.96 * sqrt(.21/400)
    s = summarize(values)
    assert s.score == 30.0
    half_width = 1.96 * (0.21 / 400) ** 0.5 * 100
    assert s.ci_low == pytest.approx(30.0 - half_width, abs=1.0)
    assert s.ci_high == pytest.approx(30.0 + half_width, abs=1.0)


def test_bootstrap_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        bootstrap_interval([])


def record(source, response, state=None, error=None):
    scores = {"valid_format": 1.0, "response_alignment": response, "state_alignment": state}
    return {
        "example_id": f"{source}-{response}-{state}",
        "data_source": source,
        "scores": scores if error is None else {},
        "state_scores": {} if state is None else {"stance": state},
        "error": error,
    }


def test_aggregate_overall_and_per_source():
    records = [
        record("reddit", 0.2, state=0.5),
        record("reddit", None, state=None),  # judge failed: unscored
        record("wildchat", 0.6, state=0.1),
        record("wildchat", None, error="simulator: timeout"),  # no output
    ]
    out = aggregate_records(records)
    ra = out["metrics"]["response_alignment"]
    assert (ra["score"], ra["examples"], ra["scored"], ra["unscored"]) == (40.0, 4, 2, 2)
    assert out["metrics"]["valid_format"]["scored"] == 3
    assert out["states"]["stance"]["score"] == 30.0
    assert out["metrics"]["state_alignment"]["score"] == 30.0
    assert out["by_data_source"]["reddit"]["metrics"]["response_alignment"]["score"] == 20.0
    assert out["by_data_source"]["wildchat"]["examples"] == 2
    assert out["failed"] == 1
    assert "embedding_similarity" not in out["metrics"]  # switched off: absent, not unscored
