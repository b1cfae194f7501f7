"""Population-level metrics of a run: diversity, distribution and detectability of the replies.

Table 1 scores each reply against its real reply; these measures look at all replies at once
(``diversity``, ``distribution`` and ``detect`` beside this module). They use the examples
whose simulated reply parsed (``response``), with the real replies of the same examples; records
without a reply (no simulator output, broken format) are left out and counted as ``left_out``. ``population_metrics`` returns the blocks that ``results.json`` holds under
``metrics.diversity``, ``metrics.distribution`` and ``metrics.detectability``, overall and per
data source.

Example:
    >>> blocks = population_metrics(records)  # doctest: +SKIP
    >>> blocks["overall"]["diversity"]["ratio"]["distinct_2"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from humanlm.population.detect import Encoder, detect
from humanlm.population.distribution import VERDICT_DATASETS, compare_lengths, compare_verdicts
from humanlm.population.diversity import compare_diversity

__all__ = [
    "POPULATION_METRICS",
    "EmbeddingMemo",
    "add_population",
    "context_groups",
    "paired_replies",
    "population_metrics",
    "summary_lines",
]

logger = logging.getLogger(__name__)

POPULATION_METRICS = ("diversity", "distribution", "detectability")
_BATCH = 32


def paired_replies(records: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], int]:
    """``(simulated, real, left_out)``: the replies of the records whose reply parsed."""
    kept = [r for r in records if _has_reply(r)]
    return (
        [r["response"] for r in kept],
        [r["ground_truth"] for r in kept],
        len(records) - len(kept),
    )


def _has_reply(record: Mapping[str, Any]) -> bool:
    return isinstance(record.get("response"), str) and isinstance(record.get("ground_truth"), str)


def context_groups(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The context of each record that ``paired_replies`` keeps: its post, else the example.

    Replies to one post share their thread, so the detector keeps them in one fold.
    """
    groups = []
    for record in filter(_has_reply, records):
        post = record.get("post_id")
        key = f"post:{record.get('data_source')}:{post}" if post not in (None, "") else None
        groups.append(key or f"example:{record.get('example_id')}")
    return groups


def _numpy(vectors: Any) -> np.ndarray:
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().cpu().numpy()
    return np.asarray(vectors, dtype=float)


class EmbeddingMemo:
    """An encoder that keeps every vector it computes, so the detector re-encodes nothing.

    Put it in place of the embedding judge's encoder (``EmbeddingJudge.encoder``): the
    embedding-similarity metric then encodes the replies as before (``encode`` and
    ``similarities`` pass through unchanged), and ``vectors`` serves the detector from what was
    kept, encoding only the texts it has not seen (those of resumed examples).
    """

    def __init__(self, encoder: Encoder):
        self.encoder = encoder
        self.kept: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> Any:
        vectors = self.encoder.encode(texts)
        self.kept.update(zip(texts, _numpy(vectors), strict=True))
        return vectors

    def similarities(self, reference: str, texts: Sequence[str]) -> list[float]:
        vectors = self.encode([reference, *texts])
        sims = (vectors[1:] @ vectors[0]).clamp(0.0, 1.0)
        return [float(s) for s in sims]

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text; texts not kept yet are encoded in length-sorted batches."""
        todo = sorted(set(texts) - self.kept.keys(), key=len)  # little padding per batch
        for start in range(0, len(todo), _BATCH):
            self.encode(todo[start : start + _BATCH])
        return np.stack([self.kept[t] for t in texts])


class _Vectors:
    """The memo's ``vectors`` as the detector's ``encode``."""

    def __init__(self, memo: EmbeddingMemo):
        self.memo = memo

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.memo.vectors(texts)


def _blocks(
    records: Sequence[Mapping[str, Any]], *, verdicts: bool, encoder: Encoder | None
) -> dict[str, Any]:
    simulated, real, left_out = paired_replies(records)
    distribution: dict[str, Any] = {"length": compare_lengths(simulated, real)}
    if verdicts:
        distribution["verdict"] = compare_verdicts(simulated, real)
    return {
        "diversity": {**compare_diversity(simulated, real), "left_out": left_out},
        "distribution": {**distribution, "left_out": left_out},
        "detectability": {
            **detect(simulated, real, encoder=encoder, groups=context_groups(records)),
            "grouped_by": "post (example when it has none)",
        },
    }


def population_metrics(
    records: Sequence[Mapping[str, Any]], *, encoder: Encoder | None = None
) -> dict[str, Any]:
    """The population blocks of ``records``, overall and per data source.

    Args:
        records: sample records (``response``, ``ground_truth``, ``data_source``).
        encoder: sentence encoder for the detector (``MiniLMEncoder``, or an ``EmbeddingMemo``
            that already holds the replies' vectors); ``None``: style features only.

    Returns:
        ``{"overall": blocks, "by_data_source": {source: blocks}}``, where blocks maps each of
        ``POPULATION_METRICS`` to its dict. Verdict shares are computed on the reddit records
        only (``distribution.verdict`` is absent when there are none).
    """
    memo = None
    if encoder is not None:
        memo = _Vectors(encoder if isinstance(encoder, EmbeddingMemo) else EmbeddingMemo(encoder))
    sources = sorted({str(r.get("data_source")) for r in records})
    by_source = {
        source: _blocks(
            [r for r in records if str(r.get("data_source")) == source],
            verdicts=source in VERDICT_DATASETS,
            encoder=memo,
        )
        for source in sources
    }
    overall = _blocks(records, verdicts=False, encoder=memo)
    verdict_records = [r for r in records if str(r.get("data_source")) in VERDICT_DATASETS]
    if verdict_records:
        simulated, real, _ = paired_replies(verdict_records)
        overall["distribution"]["verdict"] = compare_verdicts(simulated, real)
    return {"overall": overall, "by_data_source": by_source}


def add_population(
    summary: dict[str, Any],
    records: Sequence[Mapping[str, Any]],
    *,
    encoder: Encoder | None = None,
) -> None:
    """Add the population blocks to an ``aggregate_records`` summary, overall and per source."""
    blocks = population_metrics(records, encoder=encoder)
    summary["metrics"].update(blocks["overall"])
    for source, part in summary.get("by_data_source", {}).items():
        if source in blocks["by_data_source"]:
            part["metrics"].update(blocks["by_data_source"][source])


def summary_lines(metrics: Mapping[str, Any]) -> list[str]:
    """``EvalResult.summary`` lines of the population blocks in a ``metrics`` dict."""
    lines = []
    if "diversity" in metrics:
        ratio = metrics["diversity"]["ratio"]
        shown = ", ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in ratio.items())
        lines.append(f"  diversity simulated/real: {shown}")
    if "distribution" in metrics:
        length = metrics["distribution"]["length"]["distance"]
        parts = [f"length W1 {'n/a' if length is None else f'{length} words'}"]
        if "verdict" in metrics["distribution"]:
            parts.append(f"verdict JS {_shown(metrics['distribution']['verdict']['distance'])}")
        lines.append("  distribution: " + ", ".join(parts))
    if "detectability" in metrics:
        d = metrics["detectability"]
        lines.append(f"  detectability: {_detected(d)} ({d['pairs']} pairs, {d['method']})")
        if "judge" in d:
            j = d["judge"]
            lines.append(
                f"  detect judge {j['judge']}: {_detected(j)} ({j['pairs']} pairs, "
                f"{j['unscored']} unscored)"
            )
    return lines


def _shown(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _detected(block: Mapping[str, Any]) -> str:
    """``accuracy A, turing distance T``, or ``n/a`` with the reason where there is no score."""
    if block.get("accuracy") is None:
        reason = block.get("reason")
        return f"n/a ({reason})" if reason else "n/a"
    return f"accuracy {block['accuracy']}, turing distance {block['turing_distance']}"
