"""``run_eval``: score a user simulator on a Humanual split with the paper's protocol.

Run it from the command line (``humanlm eval --help``) or from Python:

    >>> result = run_eval(EvalConfig(model="hf:runs/x/model", data="demo", limit=8))  # doctest: +SKIP
    >>> print(result.summary())  # doctest: +SKIP

The run folder holds ``config.yaml`` (resolved settings), ``manifest.json``, ``samples.jsonl``
(one record per example, appended as it finishes), ``results.json`` (run scores with 95%
intervals, counts, the judge ledger) and ``judge_cache.sqlite``. Running the same command again
resumes: finished examples are skipped, examples without simulator output are generated again,
and examples whose saved generation a judge left unscored are judged again (never generated
again); verdicts already given come from the cache. Counts and the judge ledger cover every
invocation (``invocations`` keeps each one's own figures).

Sample record fields: ``schema_version``, ``example_id``, ``data_source``, ``user_id``,
``post_id``, ``turn_id``, ``context_last`` (excerpt of the last context message),
``ground_truth``, ``generation`` (raw output), ``finish_reason``, ``thinking``, ``response``
(strict parse; ``null`` when the format is broken), ``extracted_response`` (lenient),
``valid_format``, ``scores`` (metric -> 0..1 or ``null``), ``state_scores``, ``verdicts``
(metric -> score, reason, judge, prompt_version, thought, cached, calls, raw), ``error``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from humanlm.data.resolve import is_prepared_dir, resolve_split
from humanlm.errors import DataError, HumanlmError
from humanlm.eval.config import AUTO_DATASETS, PROTOCOL_VERSION, EvalConfig
from humanlm.eval.folder import check_unique_ids, resolve_run_dir
from humanlm.eval.samples import SAMPLES_FILE, SamplesFile, read_samples
from humanlm.eval.scoring import SimilarityBatcher, score_example
from humanlm.eval.stats import BOOTSTRAP_LEVEL, aggregate_records
from humanlm.files import write_json
from humanlm.judge import Judge, build_judge, build_judge_from_config
from humanlm.judge.embedding import EmbeddingJudge
from humanlm.judge.prompt import prompt_versions as judge_prompt_versions
from humanlm.llm.client import run_bounded
from humanlm.llm.ledger import accumulate
from humanlm.log import write_run_files
from humanlm.simulate import Generation, Simulator, build_sim_prompt, build_simulator

__all__ = [
    "RESULTS_FILE",
    "RESULTS_SCHEMA_VERSION",
    "EvalResult",
    "evaluate_examples",
    "evaluate_examples_async",
    "rejudge_records",
    "run_eval",
]

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
RESULTS_SCHEMA_VERSION = 1
_CACHE_FILE = "judge_cache.sqlite"


@dataclass(frozen=True)
class EvalResult:
    """What ``run_eval`` produced.

    Attributes:
        run_dir: the run folder.
        results: the content of ``results.json``.
        examples: examples in the evaluated selection.
        evaluated: examples evaluated by this invocation.
        resumed: examples already finished in the folder (skipped).
        failed: examples without a simulator output.
    """

    run_dir: Path
    results: dict[str, Any]
    examples: int
    evaluated: int
    resumed: int
    failed: int

    def summary(self) -> str:
        """A few lines: the run scores with intervals and counts."""
        lines = [
            f"{self.results['name']} on {self.results['dataset']}/{self.results['split']}: "
            f"{self.examples} examples ({self.evaluated} evaluated now, {self.resumed} resumed, "
            f"{self.results['counts'].get('rejudged_now', 0)} judged again, "
            f"{self.failed} without simulator output)"
        ]
        for metric, s in self.results["metrics"].items():
            shown = "n/a"
            if s["score"] is not None:
                shown = f"{s['score']:.2f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"
            lines.append(
                f"  {metric}: {shown} (scored {s['scored']}/{s['examples']}, "
                f"unscored {s['unscored']})"
            )
        ledger = self.results["ledger"]
        cost = "" if ledger.get("cost_usd") is None else f", ~${ledger['cost_usd']:.4f}"
        lines.append(
            f"  judge {self.results['judge']}: {ledger['calls']} requests, "
            f"{ledger['cache_hits']} cache hits, {ledger['unscored']} unscored{cost}"
        )
        lines.append(f"  run folder: {self.run_dir}")
        return "\n".join(lines)


async def evaluate_examples_async(
    examples: Sequence[Mapping[str, Any]],
    *,
    simulator: Simulator,
    judge: Judge | None,
    embedder: Judge | None = None,
    thinking: bool = True,
    aspects: bool = True,
    concurrency: int = 32,
    use_cache: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Simulate and score ``examples``; the coroutine behind ``evaluate_examples``.

    Examples go to the simulator in chunks of ``simulator.batch_size``; at most ``concurrency``
    examples are in flight, so judging finished examples overlaps with generating the next.
    """
    similarity = SimilarityBatcher(embedder) if embedder is not None else None
    size = simulator.batch_size
    slots = asyncio.Semaphore(max(1, concurrency // size))
    records: list[dict[str, Any] | None] = [None] * len(examples)
    bar = tqdm(total=len(examples), desc="eval", unit="ex", disable=not progress)
    running: list[float] = []

    async def finish(index: int, generation: Any) -> None:
        record = await score_example(
            examples[index],
            generation,
            judge=judge,
            similarity=similarity,
            aspects=aspects,
            use_cache=use_cache,
        )
        records[index] = record
        if on_record is not None:
            on_record(record)
        if (score := record["scores"].get("response_alignment")) is not None:
            running.append(score)
            bar.set_postfix(response_alignment=f"{100 * sum(running) / len(running):.1f}")
        bar.update(1)

    async def run_chunk(start: int) -> None:
        async with slots:
            chunk = examples[start : start + size]
            prompts = [build_sim_prompt(ex, thinking=thinking) for ex in chunk]
            generations = await simulator.generate(prompts)
            await asyncio.gather(*(finish(start + i, g) for i, g in enumerate(generations)))

    tasks = [asyncio.ensure_future(run_chunk(s)) for s in range(0, len(examples), size)]
    try:
        for next_done in asyncio.as_completed(tasks):
            await next_done
    finally:
        bar.close()
        if similarity is not None:
            similarity.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # no unretrieved task errors
    assert all(r is not None for r in records)
    return [r for r in records if r is not None]


def evaluate_examples(
    examples: Sequence[Mapping[str, Any]],
    *,
    simulator: Simulator,
    judge: Judge | None,
    embedder: Judge | None = None,
    thinking: bool = True,
    aspects: bool = True,
    concurrency: int = 32,
    use_cache: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Simulate a reply for each prepared example and score it; one record per example.

    Example:
        >>> sim = build_simulator("hf:runs/demo/model", settings=GenerationSettings())  # doctest: +SKIP
        >>> judge = build_judge("embedding:minilm")  # doctest: +SKIP
        >>> records = evaluate_examples(examples, simulator=sim, judge=judge, embedder=judge)  # doctest: +SKIP
        >>> aggregate_records(records)["metrics"]["response_alignment"]["score"]  # doctest: +SKIP

    Args:
        examples: prepared examples (``humanlm.data.resolve.resolve_split``).
        simulator: any ``Simulator`` (``build_simulator``).
        judge: scores response alignment and, with ``aspects``, state alignment (``None``: only
            format and embedding similarity are scored).
        embedder: scores embedding similarity (``build_judge("embedding:minilm")``; ``None``: off).
        thinking: the response prompt opens a think block.
        aspects: also score the six latent states with ``judge.judge_aspects``.
        concurrency: examples in flight.
        use_cache: let the judge read and write its cache.
        on_record: called with each record as soon as its example is finished.
        progress: show a progress bar.

    Returns:
        The records in the order of ``examples``. Summaries: ``humanlm.eval.aggregate_records``.
        The simulator's and judges' connections are closed at the end (they reopen on use).
    """

    async def go() -> list[dict[str, Any]]:
        try:
            return await evaluate_examples_async(
                examples,
                simulator=simulator,
                judge=judge,
                embedder=embedder,
                thinking=thinking,
                aspects=aspects,
                concurrency=concurrency,
                use_cache=use_cache,
                on_record=on_record,
                progress=progress,
            )
        finally:
            for part in (simulator, judge, embedder):
                if part is not None:
                    await part.aclose()

    return asyncio.run(go())


def run_eval(cfg: EvalConfig) -> EvalResult:
    """Evaluate ``cfg.model`` on ``cfg.data`` and write the run folder.

    Supports the ``hf:``, ``vllm:`` and ``openai:`` simulators, any judge spec, resuming an
    interrupted run, and mixed-source data (scored per data source too).
    Refuses: a run folder that holds an evaluation with other settings (``ConfigError``).

    Raises:
        ConfigError: bad settings or a mismatching run folder.
        DataError: the data cannot be read, or example ids repeat.
        HumanlmError: more than ``max_failed_fraction`` of the examples got no simulator
            output (``results.json`` is written first), or a server refused our credentials.
    """
    run_dir = resolve_run_dir(cfg)
    data_dir = run_dir / "data"
    source = data_dir if is_prepared_dir(data_dir) else cfg.data  # prepared on an earlier try
    dataset = None if cfg.dataset in AUTO_DATASETS else cfg.dataset
    examples = resolve_split(
        source, dataset=dataset, split=cfg.split, work_dir=data_dir, limit=cfg.effective_limit
    )
    if not examples:
        raise DataError(f"split {cfg.split!r} of {cfg.data} has no examples")
    check_unique_ids(examples)
    samples_path = run_dir / SAMPLES_FILE
    saved = read_samples(samples_path)
    pending, rejudge = [], []
    for ex in examples:
        record = saved.get(str(ex["example_id"]))
        if _needs_generation(record):
            pending.append(ex)
        elif record is not None and _needs_judging(record, cfg.metrics):
            rejudge.append((ex, record))
    write_run_files(
        run_dir,
        config=cfg.resolved(),
        seed=cfg.seed,
        extra={"fingerprint": cfg.fingerprint(), "judge_prompt_versions": judge_prompt_versions()},
    )
    logger.info(
        "evaluating %s on %d examples (%d to generate, %d to judge again) into %s",
        cfg.model,
        len(examples),
        len(pending),
        len(rejudge),
        run_dir,
    )
    cache = (cfg.judge.cache or run_dir / _CACHE_FILE) if cfg.cache else ""
    judge = build_judge_from_config(cfg.judge, cache=cache, seed=cfg.seed)
    embedder = build_judge("embedding:minilm") if cfg.embedding else None
    ngram_ban: int | None = None
    started = time.monotonic()
    if rejudge:
        with SamplesFile(samples_path) as samples:
            rejudge_records(
                rejudge,
                judge=judge,
                embedder=embedder,
                aspects=cfg.aspects,
                concurrency=cfg.concurrency,
                use_cache=cfg.cache,
                on_record=samples.append,
            )
    if pending:
        simulator = build_simulator(
            cfg.model, settings=cfg.generation_settings(), api_key_env=cfg.simulator_api_key_env
        )
        ngram_ban = simulator.ngram_ban
        if isinstance(embedder, EmbeddingJudge):
            embedder.encoder.encode(["load the model before the clock starts"])
        started = time.monotonic()
        with SamplesFile(samples_path) as samples:
            evaluate_examples(
                pending,
                simulator=simulator,
                judge=judge,
                embedder=embedder,
                thinking=cfg.thinking,
                aspects=cfg.aspects,
                concurrency=cfg.concurrency,
                use_cache=cfg.cache,
                on_record=samples.append,
                progress=cfg.progress,
            )
    elapsed = time.monotonic() - started
    latest = read_samples(samples_path)
    records = [latest[str(ex["example_id"])] for ex in examples]
    summary = aggregate_records(
        records, metrics=cfg.metrics, resamples=cfg.bootstrap_resamples, seed=cfg.seed
    )
    failed = summary.pop("failed")
    results = _results(
        cfg,
        judge=judge,
        embedder=embedder,
        counts={
            "examples": len(examples),
            "evaluated_now": len(pending),
            "rejudged_now": len(rejudge),
            "resumed": len(examples) - len(pending),
            "failed": failed,
        },
        summary=summary,
        ngram_ban=ngram_ban,
        elapsed=elapsed,
        previous=_read_results(run_dir / RESULTS_FILE),
    )
    write_json(run_dir / RESULTS_FILE, results)
    judge.ledger.write(run_dir, accumulate_runs=True)
    result = EvalResult(
        run_dir, results, len(examples), len(pending), len(examples) - len(pending), failed
    )
    if failed > cfg.max_failed_fraction * len(examples):
        raise HumanlmError(
            f"{failed} of {len(examples)} examples got no simulator output (more than "
            f"max_failed_fraction={cfg.max_failed_fraction}); is {cfg.model} up? Re-run the "
            f"same command to retry them (results so far: {run_dir / RESULTS_FILE})"
        )
    return result


def _needs_generation(record: Mapping[str, Any] | None) -> bool:
    """No saved record, or a saved one without simulator output: generate (again)."""
    return record is None or bool(record.get("error"))


def _needs_judging(record: Mapping[str, Any], metrics: Sequence[str]) -> bool:
    """A record with its generation whose judged metrics are not all scored: judge it again."""
    scores = record.get("scores") or {}
    return any(scores.get(m) is None for m in metrics if m != "valid_format")


def _read_results(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _keep_scored(old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with every metric ``old`` had scored taken from ``old`` (a rerun loses nothing)."""
    merged = {**new, "scores": dict(new["scores"]), "verdicts": dict(new["verdicts"])}
    for metric, score in (old.get("scores") or {}).items():
        if score is None or metric not in (old.get("verdicts") or {}):
            continue
        merged["scores"][metric] = score
        merged["verdicts"][metric] = old["verdicts"][metric]
        if metric == "state_alignment":
            merged["state_scores"] = old.get("state_scores") or {}
    return merged


def rejudge_records(
    items: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    *,
    judge: Judge | None,
    embedder: Judge | None = None,
    aspects: bool = True,
    concurrency: int = 32,
    use_cache: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Score saved generations again: the records a judge outage left unscored.

    The simulator is not called; what was scored before is kept as it was.

    Args:
        items: ``(example, saved record)`` pairs; the record's ``generation`` is judged.
        judge, embedder, aspects, use_cache: as for ``evaluate_examples``.
        concurrency: examples in flight.
        on_record: called with each new record.

    Returns:
        The new records, in the order of ``items``.
    """
    records: list[dict[str, Any] | None] = [None] * len(items)

    async def go() -> None:
        similarity = SimilarityBatcher(embedder) if embedder is not None else None

        async def handle(index: int) -> None:
            example, old = items[index]
            generation = Generation(
                text=old.get("generation"), finish_reason=old.get("finish_reason")
            )
            new = await score_example(
                example,
                generation,
                judge=judge,
                similarity=similarity,
                aspects=aspects,
                use_cache=use_cache,
            )
            records[index] = _keep_scored(old, new)
            if on_record is not None:
                on_record(records[index])

        try:
            await run_bounded(list(range(len(items))), handle, concurrency=concurrency)
        finally:
            if similarity is not None:
                similarity.close()
            for part in (judge, embedder):
                if part is not None:
                    await part.aclose()

    asyncio.run(go())
    return [r for r in records if r is not None]


def _results(
    cfg: EvalConfig,
    *,
    judge: Judge,
    embedder: Judge | None,
    counts: dict[str, int],
    summary: dict[str, Any],
    ngram_ban: int | None,
    elapsed: float,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of ``results.json``; ``previous``: the file of earlier invocations, if any.

    ``counts`` and the metrics describe the folder as it now stands; ``invocations`` keeps what
    each invocation did, and ``ledger`` sums the judge's spending over all of them.
    """
    evaluated = counts["evaluated_now"]
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    ledger = accumulate((previous or {}).get("ledger"), judge.ledger.to_dict())
    earlier = (previous or {}).get("invocations") or []
    mine = {
        "created": created,
        **{k: counts[k] for k in ("evaluated_now", "rejudged_now", "resumed", "failed")},
        "judge_calls": judge.ledger.calls,
        "judge_unscored": judge.ledger.unscored,
        "elapsed_s": round(elapsed, 3),
    }
    steps = [*(e for e in earlier if isinstance(e, dict)), mine]
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "protocol": PROTOCOL_VERSION,
        "created": created,
        "name": cfg.label,
        "model": cfg.model,
        "dataset": cfg.dataset,
        "data": cfg.data,
        "split": cfg.split,
        "judge": judge.name,
        "counts": counts,
        **summary,
        "settings": cfg.resolved(),
        "protocol_notes": {
            "samples_per_example": 1,
            "prompt": "response prompt only (state set r)",
            "ngram_ban_applied": ngram_ban,
        },
        "bootstrap": {
            "method": "percentile",
            "resamples": cfg.bootstrap_resamples,
            "seed": cfg.seed,
            "level": BOOTSTRAP_LEVEL,
        },
        "ledger": ledger,
        "invocations": steps,
        "embedding_ledger": embedder.ledger.to_dict() if embedder is not None else None,
        "timing": {
            "elapsed_s": round(elapsed, 3),
            "examples_per_s": round(evaluated / elapsed, 3) if evaluated and elapsed else None,
        },
    }
