"""``sample_excerpts``: the worst and best samples, with ties said as ties."""

from __future__ import annotations

import pytest

from humanlm.reports.samples import sample_excerpts


def _records(*scores: float | None) -> list[dict]:
    return [
        {"example_id": f"ex{i}", "scores": {"response_alignment": s}, "response": "hi"}
        for i, s in enumerate(scores)
    ]


@pytest.mark.parametrize(
    ("scores", "worst", "best", "best_note"),
    [
        ((0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7), [10, 20, 30], [70, 60, 50], None),  # distinct
        ((0.5,) * 6, [50, 50, 50], [], "All 6 scored samples tie at 50.0."),  # issue 25
        ((0.0, 0.5, 0.5, 0.5), [0, 50, 50], [],
         "None above the worst shown: the top score 50.0 is shared by 3 of 4 scored samples."),
        ((0.1, 0.3), [10, 30], [], "All 2 scored samples are shown under worst."),
        ((0.0, 0.0, 0.0, 0.0, 0.9), [0, 0, 0], [90], None),  # a tie at the bottom only
        ((None, None), [], [], "No scored samples."),  # nothing scored
    ],
)  # fmt: skip
def test_worst_and_best_with_ties(scores, worst, best, best_note):
    found = sample_excerpts(_records(*scores))
    assert [round(e["score"]) for e in found["worst"]] == worst
    assert [round(e["score"]) for e in found["best"]] == best
    if best_note is not None:
        assert found["empty"]["best"] == best_note


def test_an_excerpt_counts_the_samples_it_ties_with():
    found = sample_excerpts(_records(0.0, 0.0, 0.0, 0.0, 0.9))
    assert [e["ties"] for e in found["worst"]] == [3, 3, 3]
    assert [e["ties"] for e in found["best"]] == [0]
