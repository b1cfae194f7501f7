"""Does the population of simulated replies match the real one: reply lengths and AITA verdicts.

- Length: words per reply (whitespace-separated), for every dataset; the distance is the
  Wasserstein-1 (earth mover's) distance between the two length distributions, in words.
- Verdict (r/AmItheAsshole, dataset ``reddit``): the share of replies that give each verdict;
  the distance is the Jensen-Shannon distance (base 2, so 0 = same shares, 1 = disjoint).

The verdict rule (``read_verdict``): the first verdict acronym anywhere in the reply, since
people write "honestly, NTA" as often as "NTA.". The acronyms are whole words: NTA, YTA, ESH,
NAH and INFO, and the hypothetical forms YWBTA (-> YTA) and YWNBTA (-> NTA). NTA, YTA, ESH and
the hypothetical forms count in any case ("nta" is common); NAH and INFO only in capitals,
because "nah" and "info" are ordinary words. A reply with none of them is ``none``.

Example:
    >>> read_verdict("Honestly? nta. Your sister is being unfair.")
    'NTA'
    >>> read_verdict("nah, I'd need more info")
    'none'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

__all__ = [
    "VERDICTS",
    "VERDICT_DATASETS",
    "compare_lengths",
    "compare_verdicts",
    "read_verdict",
    "reply_length",
    "verdict_shares",
]

VERDICTS = ("NTA", "YTA", "ESH", "NAH", "INFO", "none")
VERDICT_DATASETS = ("reddit",)
_ANY_CASE = {"nta": "NTA", "yta": "YTA", "esh": "ESH", "ywbta": "YTA", "ywnbta": "NTA"}
_CAPITALS = {"NAH": "NAH", "INFO": "INFO"}
_TOKEN = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]+)(?![A-Za-z0-9])")
_DIGITS = 4


def read_verdict(text: str | None) -> str:
    """The verdict a reply gives (one of ``VERDICTS``): its first verdict acronym, else ``none``."""
    for match in _TOKEN.finditer(text or ""):
        word = match.group(1)
        if word in _CAPITALS:
            return _CAPITALS[word]
        if word.lower() in _ANY_CASE:
            return _ANY_CASE[word.lower()]
    return "none"


def reply_length(text: str) -> int:
    """Words in a reply (whitespace-separated)."""
    return len(text.split())


def _length_summary(lengths: Sequence[int]) -> dict[str, Any]:
    if not lengths:
        return {"replies": 0, "mean": None, "median": None, "p90": None}
    values = np.asarray(lengths, dtype=float)
    return {
        "replies": len(lengths),
        "mean": round(float(values.mean()), 2),
        "median": float(np.median(values)),
        "p90": round(float(np.percentile(values, 90)), 2),
    }


def compare_lengths(simulated: Sequence[str], real: Sequence[str]) -> dict[str, Any]:
    """Length summaries of both sides and their Wasserstein-1 distance (words)."""
    sim = [reply_length(t) for t in simulated]
    ref = [reply_length(t) for t in real]
    distance = round(float(wasserstein_distance(sim, ref)), _DIGITS) if sim and ref else None
    return {
        "simulated": _length_summary(sim),
        "real": _length_summary(ref),
        "distance": distance,
        "unit": "words",
        "method": "wasserstein-1",
    }


def verdict_shares(texts: Sequence[str]) -> dict[str, float]:
    """The share of ``texts`` giving each verdict (every label present, summing to 1)."""
    return _shares(Counter(read_verdict(t) for t in texts), len(texts))


def _shares(counts: Mapping[str, int], total: int) -> dict[str, float]:
    return {v: round(counts.get(v, 0) / total, _DIGITS) if total else 0.0 for v in VERDICTS}


def compare_verdicts(simulated: Sequence[str], real: Sequence[str]) -> dict[str, Any]:
    """Verdict shares of both sides and their Jensen-Shannon distance (base 2)."""
    sim = Counter(read_verdict(t) for t in simulated)
    ref = Counter(read_verdict(t) for t in real)
    distance = None
    if simulated and real:
        p, q = [sim[v] for v in VERDICTS], [ref[v] for v in VERDICTS]
        distance = round(float(jensenshannon(p, q, base=2)), _DIGITS)
    return {
        "simulated": _shares(sim, len(simulated)),
        "real": _shares(ref, len(real)),
        "distance": distance,
        "replies": len(simulated),
        "method": "jensen-shannon distance, base 2",
        "rule": "first verdict acronym in the reply (NTA YTA ESH NAH INFO; YWBTA=YTA, YWNBTA=NTA)",
    }
