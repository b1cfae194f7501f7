"""The paper's reference numbers (Table 1), for side-by-side reports.

Response alignment x 100 per Humanual dataset with the claude-haiku-4-5 judge, from
"HumanLM: Simulating Users with State Alignment Beats Response Imitation" (Wu et al. 2026,
arXiv 2603.03303). Our dataset ids map onto the paper's names: youtube = News, amazon = Book,
reddit = Opinion, medium = Politics, wildchat = Chat, enron = Email.
"""

from __future__ import annotations

__all__ = ["DATASET_ORDER", "PAPER_AVG", "PAPER_NAMES", "PAPER_RESULTS", "PAPER_SOURCE"]

PAPER_SOURCE = (
    "Wu et al. 2026 (arXiv 2603.03303): response alignment x100, claude-haiku-4-5 judge, "
    "first 2,000 test rows (5,000 for Opinion)"
)

# Column order of the paper's table.
DATASET_ORDER = ("youtube", "amazon", "reddit", "medium", "wildchat", "enron")

PAPER_NAMES = {
    "youtube": "News",
    "amazon": "Book",
    "reddit": "Opinion",
    "medium": "Politics",
    "wildchat": "Chat",
    "enron": "Email",
}


def _row(*scores: float) -> dict[str, float]:
    return dict(zip(DATASET_ORDER, scores, strict=True))


PAPER_RESULTS: dict[str, dict[str, float]] = {
    "Qwen3-8b": _row(5.68, 13.6, 18.7, 10.1, 3.90, 4.76),
    "Qwen3-8b-think": _row(4.83, 12.8, 20.4, 7.0, 2.16, 3.22),
    "SFT": _row(3.10, 9.3, 11.3, 6.3, 4.57, 4.30),
    "SFT-think": _row(6.00, 13.4, 16.7, 9.2, 2.50, 3.94),
    "GRPO": _row(7.92, 13.3, 18.2, 10.9, 5.83, 5.90),
    "GRPO-think": _row(7.04, 12.8, 23.8, 10.6, 3.16, 4.78),
    "HumanLM": _row(9.55, 18.5, 25.6, 12.6, 6.08, 6.71),
}

# The paper's own averages (as published; they may differ from a recomputed mean by rounding).
PAPER_AVG = {
    "Qwen3-8b": 9.5,
    "Qwen3-8b-think": 8.4,
    "SFT": 6.5,
    "SFT-think": 8.6,
    "GRPO": 10.3,
    "GRPO-think": 10.4,
    "HumanLM": 13.2,
}
