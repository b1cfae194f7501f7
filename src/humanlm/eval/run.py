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
``ground_truth``, ``generation`` (raw output), ``finish_reason``, ``reply_cut`` (the simulator
answered past its token budget and the reply was cut at its character cap; ``counts.reply_cut``
in ``results.json``), ``thinking``, ``response`` (the lenient extraction that was judged;
``null`` when empty), ``strict_response`` (the strict parse; ``null`` when the format is broken),
``valid_format``, ``scores`` (metric -> 0..1 or ``null``), ``state_scores``, ``verdicts`` (metric
-> score, reason, detail (what made an unreadable judge reply unusable), judge, prompt_version,
thought, cached, calls, raw), ``error``.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
from humanlm.eval.config import AUTO_DATASETS, PROTOCOL_VERSION, EvalConfig, read_saved_mode
from humanlm.eval.detect_judge import add_detect_judge, build_detect_judge, judge_detect
from humanlm.eval.folder import check_unique_ids, resolve_run_dir
from humanlm.eval.samples import SAMPLES_FILE, SamplesFile, read_samples
from humanlm.eval.scoring import SimilarityBatcher, score_example
from humanlm.eval.selection import select_eval_examples, tokenizer_for
from humanlm.eval.stability import stability_summary
from humanlm.eval.stats import BOOTSTRAP_LEVEL, aggregate_records
from humanlm.files import write_json
from humanlm.generate.build import build_generator
from humanlm.generate.prompt import build_sim_prompt
from humanlm.generate.protocol import Generation, GenerationSettings, Generator
from humanlm.judge import Judge, JudgeConfig, build_judge
from humanlm.judge.embedding import EmbeddingJudge
from humanlm.judge.group import ASSISTANT_VOICE
from humanlm.judge.prompt import prompt_versions as judge_prompt_versions
from humanlm.llm.client import run_bounded
from humanlm.llm.ledger import accumulate
from humanlm.llm.specs import parse_spec
from humanlm.lock import output_lock
from humanlm.log import write_run_files
from humanlm.model.check import check_model_files
from humanlm.population.metrics import (
    POPULATION_METRICS,
    EmbeddingMemo,
    add_population,
    summary_lines,
)
from humanlm.states import get_state_set

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
        if cut := self.results["counts"].get("reply_cut"):
            lines.append(f"  reply_cut: {cut} replies ran past the token budget and were cut")
        for metric, s in self.results["metrics"].items():
            if metric in POPULATION_METRICS:
                continue
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
        gate = self.results.get("protocol_notes", {}).get("chat_gate") or {}
        if gate.get("sources"):
            lines.append(
                f"  chat gate ({', '.join(gate['sources'])}): {gate['assistant_voice']} of "
                f"{gate['judged']} judged replies written as the assistant (scored 0)"
            )
        lines.extend(summary_lines(self.results["metrics"]))
        if "stability" in self.results:
            lines.append(f"  stability over seeds {self.results['stability']['seeds']}:")
            for name in ("response_alignment", "detectability.accuracy"):
                s = self.results["stability"]["metrics"].get(name)
                if s is not None:
                    se = "n/a" if s["se"] is None else f"{s['se']:.2f}"
                    lines.append(f"    {name}: {s['mean']:.2f} ± {se} (standard error)")
        lines.append(f"  run folder: {self.run_dir}")
        return "\n".join(lines)


async def evaluate_examples_async(
    examples: Sequence[Mapping[str, Any]],
    *,
    generator: Generator,
    settings: GenerationSettings,
    judge: Judge | None,
    embedder: Judge | None = None,
    thinking: bool = True,
    state_set: str = "r",
    aspects: bool = True,
    concurrency: int = 32,
    use_cache: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
    desc: str = "eval",
) -> list[dict[str, Any]]:
    """Simulate and score ``examples``; the coroutine behind ``evaluate_examples``.

    Examples go to the generator in chunks of its ``batch_size`` (else ``settings.batch_size``);
    at most ``concurrency`` examples are in flight, so judging finished examples overlaps with
    generating the next.
    """
    similarity = SimilarityBatcher(embedder) if embedder is not None else None
    size = generator.batch_size or settings.batch_size
    slots = asyncio.Semaphore(max(1, concurrency // size))
    records: list[dict[str, Any] | None] = [None] * len(examples)
    bar = tqdm(total=len(examples), desc=desc, unit="ex", disable=not progress)
    running: list[float] = []

    async def finish(index: int, generation: Any) -> None:
        record = await score_example(
            examples[index],
            generation,
            judge=judge,
            similarity=similarity,
            aspects=aspects,
            use_cache=use_cache,
            tagged=get_state_set(state_set).tagged,
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
            prompts = [build_sim_prompt(ex, thinking=thinking, state_set=state_set) for ex in chunk]
            generations = await generator.generate(prompts, settings)
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
    generator: Generator,
    settings: GenerationSettings,
    judge: Judge | None,
    embedder: Judge | None = None,
    thinking: bool = True,
    state_set: str = "r",
    aspects: bool = True,
    concurrency: int = 32,
    use_cache: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
    desc: str = "eval",
) -> list[dict[str, Any]]:
    """Simulate a reply for each prepared example and score it; one record per example.

    Example:
        >>> generator = build_generator("hf:runs/demo/humanlm/model")  # doctest: +SKIP
        >>> judge = build_judge(JudgeConfig("embedding:minilm"))  # doctest: +SKIP
        >>> records = evaluate_examples(examples, generator=generator, settings=GenerationSettings(),
        ...                             judge=judge, embedder=judge)  # doctest: +SKIP
        >>> aggregate_records(records)["metrics"]["response_alignment"]["score"]  # doctest: +SKIP

    Args:
        examples: prepared examples (``humanlm.data.resolve.resolve_split``).
        generator: any ``Generator`` (``humanlm.generate.build_generator``).
        settings: the decoding settings of every prompt.
        judge: scores response alignment and, with ``aspects``, state alignment (``None``: only
            format and embedding similarity are scored).
        embedder: scores embedding similarity (``build_judge(JudgeConfig("embedding:minilm"))``; ``None``: off).
        thinking: the response prompt opens a think block.
        state_set: the response prompt's state set (``r`` tagged, ``r_no_tag`` for SFT models).
        aspects: also score the six latent states with ``judge.judge_aspects``.
        concurrency: examples in flight.
        use_cache: let the judge read and write its cache.
        on_record: called with each record as soon as its example is finished.
        progress: show a progress bar.
        desc: the progress bar's label.

    Returns:
        The records in the order of ``examples``. Summaries: ``humanlm.eval.aggregate_records``.
        The generator's and judges' connections are closed at the end (they reopen on use).
    """

    async def go() -> list[dict[str, Any]]:
        try:
            return await evaluate_examples_async(
                examples,
                generator=generator,
                settings=settings,
                judge=judge,
                embedder=embedder,
                thinking=thinking,
                state_set=state_set,
                aspects=aspects,
                concurrency=concurrency,
                use_cache=use_cache,
                on_record=on_record,
                progress=progress,
                desc=desc,
            )
        finally:
            for part in (generator, judge, embedder):
                if part is not None:
                    await part.aclose()

    return asyncio.run(go())


def run_eval(cfg: EvalConfig, *, generator: Generator | None = None) -> EvalResult:
    """Evaluate ``cfg.model`` on ``cfg.data`` and write the run folder.

    ``generator`` replaces the one ``cfg.model`` names (rescoring replays saved generations
    through ``humanlm.eval.rescore.ReplayGenerator``).

    Supports the ``hf:``, ``vllm:`` and ``openai:`` simulators, any judge spec, resuming an
    interrupted run, and mixed-source data (scored per data source too).
    Refuses: a run folder that holds an evaluation with other settings (``ConfigError``).

    Raises:
        ConfigError: bad settings or a mismatching run folder.
        DataError: the data cannot be read, or example ids repeat.
        HumanlmError: more than ``max_failed_fraction`` of the examples got no simulator
            output (``results.json`` is written first), or a server refused our credentials.
    """
    read_saved_mode(cfg)
    if (note := cfg.mode_note()) is not None:
        logger.warning(note)
    check_model_files(cfg.model)  # a weight file cut short: one line, before any work
    run_dir = resolve_run_dir(cfg)
    with output_lock(run_dir, command="eval"):  # one run per folder: no call is made twice
        return _evaluate_into(run_dir, cfg, generator)


def _evaluate_into(run_dir: Path, cfg: EvalConfig, generator: Generator | None) -> EvalResult:
    """The evaluation, once ``run_dir`` is this run's alone."""
    data_dir = run_dir / "data"
    source = data_dir if is_prepared_dir(data_dir) else cfg.data  # prepared on an earlier try
    dataset = None if cfg.dataset in AUTO_DATASETS else cfg.dataset
    rows = resolve_split(source, dataset=dataset, split=cfg.split, work_dir=data_dir)
    tokenizer, tokenizer_name = (
        tokenizer_for(cfg.model, cfg.tokenizer) if cfg.length_filter else (None, None)
    )
    examples, selection = select_eval_examples(
        rows,
        limit=cfg.effective_limit,
        tokenizer=tokenizer,
        tokenizer_name=tokenizer_name,
        state_set=cfg.effective_state_set,
        thinking=cfg.effective_thinking,
        enabled=cfg.length_filter,
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
    judge = build_judge(cfg.judge, cache=cache, seed=cfg.seed)
    embedder = build_judge(JudgeConfig("embedding:minilm")) if cfg.embedding else None
    if cfg.population and isinstance(embedder, EmbeddingJudge):
        embedder.encoder = EmbeddingMemo(embedder.encoder)  # type: ignore[assignment]
    ngram_ban: int | None = None
    started = time.monotonic()
    if rejudge:
        with SamplesFile(samples_path) as samples:
            rejudge_records(
                rejudge,
                judge=judge,
                embedder=embedder,
                aspects=cfg.aspects,
                concurrency=cfg.simulator.concurrency,
                use_cache=cfg.cache,
                on_record=samples.append,
            )
    if pending:
        settings = cfg.generation_settings()
        if generator is None:
            generator = build_generator(
                cfg.model,
                settings=settings,
                api=cfg.simulator.api,
                api_key_env=cfg.simulator.api_key_env,
                ngram_xargs=cfg.simulator.ngram_xargs,
                vllm=cfg.vllm,
            )
        ngram_ban = settings.no_repeat_ngram_size if generator.applies_ngram_ban else 0
        if isinstance(embedder, EmbeddingJudge):
            embedder.encoder.encode(["load the model before the clock starts"])
        started = time.monotonic()
        with SamplesFile(samples_path) as samples:
            evaluate_examples(
                pending,
                generator=generator,
                settings=settings,
                judge=judge,
                embedder=embedder,
                thinking=cfg.effective_thinking,
                state_set=cfg.effective_state_set,
                aspects=cfg.aspects,
                concurrency=cfg.simulator.concurrency,
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
    population_started = time.monotonic()
    if cfg.population:
        encoder = embedder.encoder if isinstance(embedder, EmbeddingJudge) else None
        add_population(summary, records, encoder=encoder)
    population_s = time.monotonic() - population_started
    detect_ledger = None
    if cfg.detect_judge:
        detector = build_detect_judge(cfg, cache=cache)
        found = judge_detect(
            examples, records, judge=detector, seed=cfg.seed, use_cache=cfg.cache, out=run_dir
        )
        add_detect_judge(summary, found)
        detect_ledger = detector.ledger.to_dict()
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
            "reply_cut": sum(bool(r.get("reply_cut")) for r in records),
        },
        summary=summary,
        ngram_ban=ngram_ban,
        selection=selection,
        elapsed=elapsed,
        previous=_read_results(run_dir / RESULTS_FILE),
        gate=_gate_note(cfg, judge, records),
    )
    results["timing"]["population_s"] = round(population_s, 3) if cfg.population else None
    if detect_ledger is not None:
        results["detect_ledger"] = detect_ledger
    write_json(run_dir / RESULTS_FILE, results)
    judge.ledger.write(run_dir, accumulate_runs=True)
    if cfg.seeds > 1:  # after this seed's results are safe on disk
        results["stability"] = _other_seeds(cfg, run_dir, results)
        write_json(run_dir / RESULTS_FILE, results)
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
                text=old.get("generation"),
                finish_reason=old.get("finish_reason"),
                cut=bool(old.get("reply_cut")),
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
    selection: dict[str, Any],
    elapsed: float,
    previous: dict[str, Any] | None = None,
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of ``results.json``; ``previous``: the file of earlier invocations, if any;
    ``gate``: the Chat gate's note (``_gate_note``).

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
            "samples_per_example": cfg.seeds,
            "prompt": f"response prompt only (state set {cfg.effective_state_set})",
            **cfg.prompt_source(),
            "scoring": "lenient extraction judged; strict format reported as valid_format",
            "ngram_ban_applied": ngram_ban,
            "ngram_ban": _ngram_note(cfg, ngram_ban),
            "chat_gate": gate,
            "simulator_api": _simulator_api(cfg),
            "length_filter": selection,
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


def _other_seeds(cfg: EvalConfig, run_dir: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Evaluate seeds ``seed + 1`` ... into ``seed-N`` subfolders; their stability summary."""
    runs = [(cfg.seed, results["metrics"])]
    for seed in range(cfg.seed + 1, cfg.seed + cfg.seeds):
        logger.info("evaluating seed %d of %d", seed - cfg.seed + 1, cfg.seeds)
        sub = dataclasses.replace(cfg, seed=seed, seeds=1, out=str(run_dir / f"seed-{seed}"))
        runs.append((seed, run_eval(sub).results["metrics"]))
    return stability_summary(runs)


def _simulator_api(cfg: EvalConfig) -> str:
    kind = parse_spec(cfg.model, role="simulator").kind
    return cfg.simulator.api if kind == "openai" else "rendered prompt (local)"


def _ngram_note(cfg: EvalConfig, applied: int | None) -> dict[str, Any]:
    """Whether and how this backend applied the no-repeat n-gram ban."""
    kind = parse_spec(cfg.model, role="simulator").kind
    how = {
        "hf": "transformers logits processor (humanlm.model.ngram)",
        "vllm": "vLLM logits processor (humanlm.model.vllm_ngram)",
        "openai": "requested from the server through vllm_xargs (applied only by a vLLM server "
        "started with --logits-processors humanlm.model.vllm_ngram:NGramBanLogitsProcessor)",
    }[kind]
    if applied is None:
        how = "no generation in this invocation (every example was resumed)"
    elif not applied:
        how = "not applied" + (
            " (simulator.ngram_xargs is off)" if kind == "openai" and cfg.no_repeat_ngram else ""
        )
    note: dict[str, Any] = {"backend": kind, "size": applied, "how": how}
    if applied != 0:  # the folder's scope (its fingerprint holds it), also when resumed
        note["scope"] = cfg.ngram_ban_scope
        note["covers"] = _SCOPES[cfg.ngram_ban_scope]
    return note


# What each scope of the n-gram ban covers, for ``protocol_notes.ngram_ban``.
_SCOPES = {
    "reply": "the reply after the thinking block (thinking neither banned nor counted)",
    "all": "every generated token, thinking included",
}


def _gate_note(
    cfg: EvalConfig, judge: Judge, records: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The Chat gate in this folder: its setting, the data sources it applied to, and how many
    judged replies it set to 0 (``assistant_voice``, counted apart from unscored ones)."""
    sources = sorted(
        {str(r.get("data_source")) for r in records if judge.gates(r.get("data_source"))}
    )
    gated = [r for r in records if judge.gates(r.get("data_source"))]
    verdicts = [((r.get("verdicts") or {}).get("response_alignment") or {}) for r in gated]
    judged = [v for v in verdicts if v.get("score") is not None]
    voices = sum(v.get("reason") == ASSISTANT_VOICE for v in judged)
    if voices:
        logger.info(
            "chat gate: %d of %d judged replies written as the assistant", voices, len(judged)
        )
    return {
        "setting": cfg.judge.chat_gate,
        "sources": sources,
        "gated_examples": len(gated),
        "judged": len(judged),
        "assistant_voice": voices,
        "assistant_voice_rate": round(voices / len(judged), 4) if judged else None,
        "how": "the response judge also decides whether a reply is written from the AI "
        "assistant's side; such replies score 0 on response and state alignment",
    }
