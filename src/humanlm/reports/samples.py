"""The report's sample excerpts: the worst and best samples by response alignment.

No "best" sample merely ties with the worst ones shown; ties are counted on each excerpt, and
when no sample is left for the best column (all tie, or the top score is shared with the worst
shown) the column says so instead of "No scored samples".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["sample_excerpts"]

_EXCERPT = 400
_SAMPLES_SHOWN = 3


def sample_excerpts(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The worst and best samples by response alignment, and what to say where none is shown.

    Returns:
        ``{"worst": [excerpt], "best": [excerpt], "empty": {"worst": text, "best": text}}``;
        an excerpt counts the other samples its score ties with.
    """
    scored = [r for r in samples if (r.get("scores") or {}).get("response_alignment") is not None]
    scored.sort(key=lambda r: (r["scores"]["response_alignment"], str(r["example_id"])))
    worst = scored[:_SAMPLES_SHOWN]
    # Distinct examples only, and no "best" that merely ties with the worst ones.
    floor = worst[-1]["scores"]["response_alignment"] if worst else None
    best = [
        r
        for r in reversed(scored[-_SAMPLES_SHOWN:])
        if r not in worst and r["scores"]["response_alignment"] != floor
    ]
    counts = Counter(r["scores"]["response_alignment"] for r in scored)
    empty = {"worst": "No scored samples.", "best": "No scored samples."}
    if scored and not best:
        top = scored[-1]["scores"]["response_alignment"]
        if len(counts) == 1:
            empty["best"] = f"All {len(scored)} scored samples tie at {100 * top:.1f}."
        elif len(scored) == len(worst):
            empty["best"] = f"All {len(scored)} scored samples are shown under worst."
        else:  # the top score is held by the worst shown too: at least two samples have it
            empty["best"] = (
                f"None above the worst shown: the top score {100 * top:.1f} is shared by "
                f"{counts[top]} of {len(scored)} scored samples."
            )
    return {
        "worst": [_excerpt(r, counts) for r in worst],
        "best": [_excerpt(r, counts) for r in best],
        "empty": empty,
    }


def _clip(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _excerpt(record: Mapping[str, Any], counts: Mapping[float, int]) -> dict[str, Any]:
    verdict = (record.get("verdicts") or {}).get("response_alignment") or {}
    response = record.get("response")
    score = record["scores"]["response_alignment"]
    return {
        "example_id": record["example_id"],
        "data_source": record.get("data_source"),
        "score": 100 * score,
        "ties": counts.get(score, 1) - 1,
        "reason": verdict.get("reason"),
        "thought": _clip(verdict.get("thought")),
        "context": _clip((record.get("context_last") or {}).get("content")),
        "response": _clip(response)
        if response
        else "(invalid format) " + _clip(record.get("generation")),
        "truth": _clip(record.get("ground_truth")),
    }
