"""Lexical diversity of a corpus of replies: distinct-n, MATTR, Yule's K and HD-D.

Every measure is computed at corpus level, over all replies of a run (or of one data source),
once for the simulated and once for the real replies of the same examples, so both sides have
the same number of replies. Tokens are lower-cased words (``tokenize``: runs of letters and
digits, with inner apostrophes kept, so "don't" is one token); n-grams never span two replies.

- ``distinct_n``: distinct n-grams / all n-grams (n = 1, 2); 1.0 when no n-gram repeats.
- ``mattr``: moving-average type-token ratio (Covington & McFall, 2010) over the replies'
  tokens in order, window ``MATTR_WINDOW`` = 50 tokens (MirrorBench's default); a corpus shorter
  than the window gets its plain type-token ratio.
- ``yules_k``: Yule's characteristic K = 10^4 * (sum_f f^2 V_f - N) / N^2 (V_f: types seen f
  times, N: tokens). Higher means *less* diverse (more repetition).
- ``hdd``: HD-D as MirrorBench defines it (McCarthy & Jarvis, 2010): for each type, the
  hypergeometric probability that a random draw of ``HDD_SAMPLE`` = 42 tokens (without
  replacement) contains it at least once, summed over types and divided by the draw size; the
  draw is the whole corpus when it has fewer tokens.

Example:
    >>> round(distinct_n(["a b a b"], 2), 3)
    0.667
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "DIVERSITY_MEASURES",
    "HDD_SAMPLE",
    "MATTR_WINDOW",
    "compare_diversity",
    "distinct_n",
    "diversity",
    "hdd",
    "mattr",
    "tokenize",
    "yules_k",
]

MATTR_WINDOW = 50
HDD_SAMPLE = 42
DIVERSITY_MEASURES = ("distinct_1", "distinct_2", "mattr", "yules_k", "hdd")
_WORD = re.compile(r"\w+(?:'\w+)*")
_DIGITS = 4


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``."""
    return _WORD.findall(text.lower())


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    """Distinct n-grams over all n-grams of ``texts`` (``None`` when there is no n-gram)."""
    return _distinct([tokenize(t) for t in texts], n)


def _distinct(token_lists: Iterable[Sequence[str]], n: int) -> float | None:
    grams: set[tuple[str, ...]] = set()
    total = 0
    for tokens in token_lists:
        grams.update(zip(*(tokens[i:] for i in range(n)), strict=False))
        total += max(0, len(tokens) - n + 1)
    return len(grams) / total if total else None


def mattr(tokens: Sequence[str], window: int = MATTR_WINDOW) -> float | None:
    """Moving-average type-token ratio of ``tokens`` (``None`` when empty)."""
    if not tokens:
        return None
    if len(tokens) <= window:
        return len(set(tokens)) / len(tokens)
    counts = Counter(tokens[:window])
    total = len(counts)
    for i in range(window, len(tokens)):
        leaving, entering = tokens[i - window], tokens[i]
        counts[leaving] -= 1
        if counts[leaving] == 0:
            del counts[leaving]
        counts[entering] += 1
        total += len(counts)
    return total / (len(tokens) - window + 1) / window


def yules_k(tokens: Sequence[str]) -> float | None:
    """Yule's K of ``tokens`` (``None`` when empty); higher means more repetition."""
    if not tokens:
        return None
    n = len(tokens)
    squares = sum(f * f for f in Counter(tokens).values())
    return 1e4 * (squares - n) / (n * n)


def hdd(tokens: Sequence[str], sample: int = HDD_SAMPLE) -> float | None:
    """HD-D of ``tokens`` with a draw of ``sample`` tokens (``None`` when empty)."""
    n = len(tokens)
    if n == 0:
        return None
    draw = min(sample, n)
    log_all = math.lgamma(n + 1) - math.lgamma(draw + 1) - math.lgamma(n - draw + 1)
    total = 0.0
    for f in Counter(tokens).values():
        rest = n - f
        if rest < draw:
            total += 1.0  # every draw holds the type
            continue
        log_none = math.lgamma(rest + 1) - math.lgamma(draw + 1) - math.lgamma(rest - draw + 1)
        total += 1.0 - math.exp(log_none - log_all)
    return total / draw


def diversity(texts: Sequence[str]) -> dict[str, Any]:
    """Every measure over the corpus ``texts``, plus its reply and token counts."""
    token_lists = [tokenize(text) for text in texts]
    tokens = [t for listed in token_lists for t in listed]
    values = {
        "distinct_1": _distinct(token_lists, 1),
        "distinct_2": _distinct(token_lists, 2),
        "mattr": mattr(tokens),
        "yules_k": yules_k(tokens),
        "hdd": hdd(tokens),
    }
    rounded = {k: None if v is None else round(v, _DIGITS) for k, v in values.items()}
    return {**rounded, "replies": len(texts), "tokens": len(tokens)}


def compare_diversity(simulated: Sequence[str], real: Sequence[str]) -> dict[str, Any]:
    """``{"simulated", "real", "ratio", ...}``: both corpora's measures and simulated / real.

    A ratio is ``None`` when either side is, or the real value is 0.
    """
    sim, ref = diversity(simulated), diversity(real)
    ratio = {}
    for measure in DIVERSITY_MEASURES:
        a, b = sim[measure], ref[measure]
        ratio[measure] = None if a is None or not b else round(a / b, _DIGITS)
    return {
        "simulated": sim,
        "real": ref,
        "ratio": ratio,
        "tokenizer": "lower-cased words",
        "mattr_window": MATTR_WINDOW,
        "hdd_sample": HDD_SAMPLE,
    }
