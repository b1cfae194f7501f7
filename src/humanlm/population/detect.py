"""Can a detector tell simulated replies from real ones? An offline, cross-validated classifier.

The detector is a logistic regression (scikit-learn, standardised features, C = 1) on simple
style features of each reply (``style_features``: length, word length, capitals, punctuation,
line breaks, repetition) and, when an encoder is given, its MiniLM sentence embedding. It is
cross-validated with grouped folds (``GroupKFold``, at most ``FOLDS`` folds): the real and the
simulated reply of one example are always in the same fold, and so are all examples of one
context when ``groups`` names it (``humanlm eval`` groups by post: the replies to one thread),
so no context is seen in training and testing.

- ``accuracy``: held-out replies classified correctly, x100 (50 = chance);
- ``turing_distance``: ``|accuracy - 50|`` (0: indistinguishable, 50: always told apart);
- ``pair_accuracy``: pairs where the simulated reply got the higher "simulated" probability,
  x100 (ties count one half): the detector's answer to "which of the two is the human?".

A simulator that copies the real replies gives identical features on both sides, hence 50.

Example:
    >>> detect(["NTA"] * 8, [f"reply {i} is long and varied" for i in range(8)])["accuracy"]  # doctest: +SKIP
    100.0
"""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from humanlm.judge.realism import DetectPair

__all__ = [
    "FOLDS",
    "MIN_PAIRS",
    "Encoder",
    "StyleDetector",
    "detect",
    "pair_fooled",
    "style_features",
]

logger = logging.getLogger(__name__)

FOLDS = 5
MIN_PAIRS = 4
_PUNCTUATION = set(string.punctuation)


class Encoder(Protocol):
    """Anything with ``encode(texts)`` -> one vector per text (``MiniLMEncoder``)."""

    def encode(self, texts: Sequence[str]) -> Any: ...


def style_features(text: str) -> list[float]:
    """Eleven style features of one reply (scale-free where possible)."""
    return list(_style(text))


@lru_cache(maxsize=1 << 16)  # overall and per-source detection see the same replies
def _style(text: str) -> tuple[float, ...]:
    words = text.split()
    chars = max(1, len(text))
    letters = sum(map(str.isalpha, text))
    distinct = len({w.lower() for w in words})
    return (
        float(np.log1p(len(words))),
        float(np.log1p(len(text))),
        sum(map(len, words)) / len(words) if words else 0.0,
        sum(map(str.isupper, text)) / max(1, letters),
        sum(map(_PUNCTUATION.__contains__, text)) / chars,
        text.count("!") / chars * 100,
        text.count("?") / chars * 100,
        float(np.log1p(text.count("\n"))),
        distinct / max(1, len(words)),
        sum(map(str.isdigit, text)) / chars,
        1.0 if text.strip()[-1:] in {".", "!", "?"} else 0.0,
    )


def _features(texts: Sequence[str], encoder: Encoder | None) -> np.ndarray:
    style = np.asarray([_style(t) for t in texts], dtype=float)
    if encoder is None:
        return style
    vectors = encoder.encode(list(texts))
    embedded = np.asarray(vectors.detach().cpu().numpy() if hasattr(vectors, "detach") else vectors)
    return np.hstack([style, embedded.astype(float)])


def _held_out(
    simulated: Sequence[str],
    real: Sequence[str],
    labels: Sequence[str],
    *,
    encoder: Encoder | None,
    folds: int,
) -> np.ndarray:
    """Each reply's "simulated" probability from a detector fit on the other folds' contexts
    (``real`` first, then ``simulated``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = _features([*real, *simulated], encoder)
    y = np.array([0] * len(real) + [1] * len(simulated))
    codes = {label: i for i, label in enumerate(dict.fromkeys(labels))}
    fold_groups = np.array([codes[label] for label in labels] * 2)
    prob = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(x, y, fold_groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        model.fit(x[train], y[train])
        prob[test] = model.predict_proba(x[test])[:, 1]
    return prob


def detect(
    simulated: Sequence[str],
    real: Sequence[str],
    *,
    encoder: Encoder | None = None,
    groups: Sequence[str] | None = None,
    folds: int = FOLDS,
) -> dict[str, Any]:
    """Cross-validated detection of ``simulated`` among ``real`` (pairs: same index, same example).

    Args:
        simulated, real: the replies, one pair per example.
        encoder: adds sentence embeddings to the style features (``None``: style only).
        groups: the context of each pair; pairs of one context share a fold (``None``: each
            pair is its own context).
        folds: most folds.

    Returns:
        ``{"accuracy", "turing_distance", "pair_accuracy", "pairs", "contexts", "folds",
        "method"}``; the scores are ``None`` (with ``reason``) below ``MIN_PAIRS`` pairs or
        with fewer than two contexts.
    """
    if len(simulated) != len(real):
        raise ValueError("detect needs one real reply per simulated reply")
    pairs = len(simulated)
    method = "logistic regression on style features" + (
        " + MiniLM embeddings" if encoder is not None else ""
    )
    labels = [str(g) for g in groups] if groups is not None else [str(i) for i in range(pairs)]
    if len(labels) != pairs:
        raise ValueError("detect needs one group label per pair")
    contexts = len(set(labels))
    result: dict[str, Any] = {"pairs": pairs, "contexts": contexts, "method": method}
    if pairs < MIN_PAIRS or contexts < 2:
        none = {"accuracy": None, "turing_distance": None, "pair_accuracy": None, "folds": 0}
        why = f"needs at least {MIN_PAIRS} pairs from two contexts or more"
        return {**result, **none, "reason": why}
    n_folds = min(folds, contexts)
    prob = _held_out(simulated, real, labels, encoder=encoder, folds=n_folds)
    y = np.array([0] * pairs + [1] * pairs)  # 1 = simulated
    # A probability of exactly 0.5 (identical features) is no decision: half right on average.
    correct = np.where(np.isclose(prob, 0.5), 0.5, ((prob > 0.5) == (y == 1)).astype(float))
    accuracy = float(correct.mean() * 100)
    real_p, sim_p = prob[:pairs], prob[pairs:]
    wins = np.where(np.isclose(sim_p, real_p), 0.5, (sim_p > real_p).astype(float))
    return {
        **result,
        "accuracy": round(accuracy, 2),
        "turing_distance": round(abs(accuracy - 50.0), 2),
        "pair_accuracy": round(float(wins.mean() * 100), 2),
        "folds": n_folds,
    }


def pair_fooled(
    simulated: Sequence[str], real: Sequence[str], *, groups: Sequence[str], folds: int = FOLDS
) -> list[float] | None:
    """Per pair, whether the held-out style detector took the simulated reply for the human's.

    1 where it gave the simulated reply the lower "simulated" probability, 0.5 on a tie, 0
    where it told them apart (``detect``'s pair test, per pair). ``None`` below ``MIN_PAIRS``
    pairs or with fewer than two groups: no held-out fold to judge with.
    """
    if len(simulated) != len(real) or len(groups) != len(real):
        raise ValueError("pair_fooled needs one real reply and one group per simulated reply")
    labels = [str(g) for g in groups]
    contexts = len(set(labels))
    if len(simulated) < MIN_PAIRS or contexts < 2:
        return None
    prob = _held_out(simulated, real, labels, encoder=None, folds=min(folds, contexts))
    real_p, sim_p = prob[: len(real)], prob[len(real) :]
    fooled = np.where(np.isclose(sim_p, real_p), 0.5, (sim_p < real_p).astype(float))
    return [float(v) for v in fooled]


class StyleDetector:
    """The offline ``Detector`` of the realism reward (``humanlm.judge.realism``).

    A reward batch is its own training set: the style classifier is fit on the batch's real and
    generated replies with grouped folds (a pair is judged by a model that never saw its
    example), so it keeps up with the policy as it changes. A batch with fewer than
    ``MIN_PAIRS`` pairs or a single example leaves every pair unscored (``None``).
    """

    name = "style"

    async def fooled(self, pairs: Sequence[DetectPair]) -> list[float | None]:
        found = pair_fooled(
            [p.generated for p in pairs], [p.real for p in pairs], groups=[p.group for p in pairs]
        )
        return list(found) if found is not None else [None] * len(pairs)

    async def aclose(self) -> None:
        """Nothing to release."""
