"""An LLM as the detector: shown the context and two replies, it picks the one a human wrote.

``humanlm eval --detect-judge SPEC``: for every example whose simulated reply parsed, the judge
sees the conversation and the real and the simulated reply as candidates ``A`` and ``B``, in an
order drawn from the example id and the run seed (so a re-run asks the same question and hits
the cache). It answers ``{"human": "A" | "B", "reason": ...}``. A reply that names neither,
after the judge's retries, is unscored, never guessed. Results go to
``metrics.detectability.judge`` (accuracy x100 over the scored pairs, turing distance
``|accuracy - 50|``, scored and unscored counts) and, one line per pair, to
``detect_judge.jsonl`` in the run folder.

The question and its parsing are ``humanlm.judge.detect``'s (the GRPO realism reward asks the
same one). The call goes through ``LLMJudge.ask``: the LLM layer's retries, the judge's cache
and ledger.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from humanlm.eval.config import EvalConfig
from humanlm.files import write_jsonl
from humanlm.judge import Judge, build_judge
from humanlm.judge.detect import DETECT_PROMPT_VERSION, build_detect_prompt, parse_pick
from humanlm.states.examples import judge_context

__all__ = [
    "DETECT_FILE",
    "DETECT_PROMPT_VERSION",
    "add_detect_judge",
    "build_detect_judge",
    "build_detect_prompt",
    "judge_detect",
    "parse_pick",
]

DETECT_FILE = "detect_judge.jsonl"


def _real_first(example_id: str, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{example_id}".encode()).digest()
    return digest[0] % 2 == 0


async def _ask_all(judge: Any, items: Sequence[dict[str, Any]], use_cache: bool) -> list[Any]:
    async def one(item: dict[str, Any]) -> Any:
        return await judge.ask(
            item["prompt"], version=DETECT_PROMPT_VERSION, parse=parse_pick, use_cache=use_cache
        )

    try:
        return await asyncio.gather(*(one(item) for item in items))
    finally:
        await judge.aclose()


def _summary(rows: Sequence[Mapping[str, Any]], judge_name: str) -> dict[str, Any]:
    scored = [r for r in rows if r["correct"] is not None]
    accuracy = 100 * sum(r["correct"] for r in scored) / len(scored) if scored else None
    return {
        "judge": judge_name,
        "prompt_version": DETECT_PROMPT_VERSION,
        "accuracy": None if accuracy is None else round(accuracy, 2),
        "turing_distance": None if accuracy is None else round(abs(accuracy - 50), 2),
        "pairs": len(scored),
        "unscored": len(rows) - len(scored),
    }


def judge_detect(
    examples: Sequence[Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
    *,
    judge: Any,
    seed: int = 0,
    use_cache: bool = True,
    out: Path | None = None,
) -> dict[str, Any]:
    """Ask ``judge`` to pick the human reply of each example; accuracy overall and per source.

    Args:
        examples: the prepared examples (for the full context).
        records: their sample records, in the same order.
        judge: an ``LLMJudge`` (``build_judge``).
        seed: decides the order of the two replies, with the example id.
        use_cache: let the judge read and write its cache.
        out: run folder to write ``detect_judge.jsonl`` into (``None``: not written).

    Returns:
        ``{"overall": summary, "by_data_source": {source: summary}}``.
    """
    items = []
    for ex, record in zip(examples, records, strict=True):
        response = record.get("response")
        if not isinstance(response, str):
            continue
        real_first = _real_first(str(ex["example_id"]), seed)
        a, b = (ex["ground_truth"], response) if real_first else (response, ex["ground_truth"])
        items.append({
            "example_id": ex["example_id"], "data_source": record.get("data_source"),
            "human": "A" if real_first else "B",
            "prompt": build_detect_prompt(context=judge_context(ex), a=a, b=b),
        })  # fmt: skip
    outcomes = asyncio.run(_ask_all(judge, items, use_cache)) if items else []
    rows = []
    for item, outcome in zip(items, outcomes, strict=True):
        pick = next(iter(outcome.parsed.scores)) if outcome.parsed is not None else None
        rows.append({
            "example_id": item["example_id"], "data_source": item["data_source"],
            "human": item["human"], "pick": pick,
            "correct": None if pick is None else pick == item["human"],
            "reason": outcome.reason, "raw": outcome.raw,
        })  # fmt: skip
    if out is not None:
        write_jsonl(out / DETECT_FILE, rows)
    sources = sorted({str(r["data_source"]) for r in rows})
    return {
        "overall": _summary(rows, judge.name),
        "by_data_source": {
            s: _summary([r for r in rows if str(r["data_source"]) == s], judge.name)
            for s in sources
        },
    }


def add_detect_judge(summary: dict[str, Any], found: Mapping[str, Any]) -> None:
    """Put ``judge_detect``'s summaries under ``detectability.judge``, overall and per source."""
    summary["metrics"].setdefault("detectability", {})["judge"] = found["overall"]
    for source, part in summary.get("by_data_source", {}).items():
        if source in found["by_data_source"]:
            block = part["metrics"].setdefault("detectability", {})
            block["judge"] = found["by_data_source"][source]


def build_detect_judge(cfg: EvalConfig, *, cache: Any = None) -> Judge:
    """The ``--detect-judge`` LLM: the run judge's block (limits, key, sampling) with its spec."""
    block = dataclasses.replace(cfg.judge, spec=str(cfg.detect_judge))
    return build_judge(block, cache=cache, seed=cfg.seed)
