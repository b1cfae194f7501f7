"""``humanlm demo``: a mini Table 1 offline on a CPU: base, SFT, GRPO and HumanLM, as one command.

Example:
    >>> from humanlm.demo import run_demo
    >>> result = run_demo("runs/demo")  # doctest: +SKIP
    >>> result.table["rows"][0]["method"]  # doctest: +SKIP
    'base'

Steps: prepare the bundled demo world (synthetic: eight forum users of four kinds whose personas
decide their verdict, emotion and style; test posts are never seen in training) -> the
**base**: the shipped demo base (a small Qwen3 on the demo tokenizer, warmed up when it was built
on an enlarged demo world with targets swapped between writers of the same post, so it knows the
output format of every mode but not who writes what) -> from that checkpoint, with the same data,
steps and batch size: **SFT** on the real replies, **GRPO** with the response reward (thinking
on, as HumanLM), **HumanLM** (GRPO over the seven states, each rewarded on its own state) ->
evaluate each on the test split with its own mode's prompt and thinking -> write ``table.json``,
``report.md`` and the charts.

Outputs in ``DIR``: ``table.json`` (the comparison), ``report.md``, ``reward.png`` (HumanLM's
reward per state, GRPO's response reward), ``loss.png`` (warm-up, SFT and GRPO losses on their own
axes), ``metrics.jsonl`` (HumanLM's per-step rewards), ``base/`` (the warm-up checkpoint and
its log), ``sft/``, ``grpo/``, ``humanlm/`` (training run folders) and ``eval/<method>/``
(``samples.jsonl``, ``results.json``).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanlm.config import TrainConfig, load_config
from humanlm.configs import config_path
from humanlm.files import apply_umask, write_json, write_jsonl
from humanlm.states import STATE_NAMES
from humanlm.states.modes import MODES, Mode

__all__ = ["DEMO_METHODS", "DemoResult", "demo_config_path", "run_demo"]

logger = logging.getLogger(__name__)

# Table rows in order: the method's name and the training mode it is trained and evaluated in.
# The base is the warm-up checkpoint, evaluated like HumanLM's starting point. GRPO thinks as
# HumanLM does (mode grpo-think), so the two differ only in their rewards: the response alone,
# or each of the seven states.
DEMO_METHODS: tuple[tuple[str, str], ...] = (
    ("base", "humanlm"),
    ("sft", "sft"),
    ("grpo", "grpo-think"),
    ("humanlm", "humanlm"),
)
TABLE_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its outputs, and its headline numbers."""

    out_dir: Path
    report: Path
    table_path: Path
    table: dict[str, Any]
    metrics: Path
    plot: Path
    steps: list[dict[str, Any]]
    seconds: dict[str, float]


def demo_config_path() -> Path:
    """The demo preset shipped in the package (``humanlm configs show demo.yaml``)."""
    return config_path("demo.yaml")


def _warm_up_base(cfg: TrainConfig, out: Path, *, progress: bool) -> tuple[Path, list[dict]]:
    """The shared base, saved in ``out/model``: the model of ``model.path`` (the preset's is the
    shipped demo base, warmed up on the enlarged demo world when it was built; ``tiny`` builds the
    tiny Qwen3) after ``warmup.steps`` of the format warm-up (the preset's: none).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    from humanlm.data.resolve import resolve_split
    from humanlm.demo.base import BASE_MARKER
    from humanlm.model.tiny import build_tiny_model
    from humanlm.train.warmup import build_warmup_dataset, run_warmup

    set_seed(cfg.seed)
    if cfg.model.path == "tiny":
        start = build_tiny_model(out / "tiny", seed=cfg.seed)
    else:
        start = Path(cfg.model.path)
    log: list[dict[str, Any]] = []
    if (start / BASE_MARKER).is_file():  # the shipped base's own warm-up, for the loss chart
        losses = json.loads((start / BASE_MARKER).read_text(encoding="utf-8"))["losses"]
        log = [{"phase": "warmup", "step": i, "loss": x} for i, x in enumerate(losses, 1)]
    if cfg.warmup.steps == 0:
        shutil.copytree(start, out / "model", dirs_exist_ok=True)
        apply_umask(out / "model")
        write_jsonl(out / "metrics.jsonl", log)
        return out / "model", log
    examples = resolve_split(
        cfg.data.source, dataset=cfg.data.dataset, split=cfg.data.train_split, work_dir=out / "data"
    )
    tokenizer = AutoTokenizer.from_pretrained(start)
    model = AutoModelForCausalLM.from_pretrained(start)
    run_warmup(
        model=model,
        tokenizer=tokenizer,
        dataset=build_warmup_dataset(examples, seed=cfg.seed),
        steps=cfg.warmup.steps,
        learning_rate=cfg.warmup.learning_rate,
        batch_size=cfg.warmup.batch_size,
        seed=cfg.seed,
        on_log=lambda r: log.append({"phase": "warmup", **r}),
        progress=progress,
    )
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    apply_umask(out / "model")  # safetensors writes the weights 0600
    write_jsonl(out / "metrics.jsonl", log)
    return out / "model", log


def _evaluate(
    model_dir: Path, mode: Mode, *, cfg: TrainConfig, out: Path, progress: bool, label: str
) -> dict[str, Any]:
    """Score ``model_dir`` on the test split with ``mode``'s response prompt and thinking."""
    from humanlm.data.resolve import resolve_split
    from humanlm.eval import aggregate_records, evaluate_examples
    from humanlm.generate import GenerationSettings, build_generator
    from humanlm.judge import build_judge

    examples = resolve_split(
        cfg.data.source, dataset=cfg.data.dataset, split="test", work_dir=out / "data"
    )
    # The paper's decoding (temperature 0.4, 4-gram ban); the budget of the training rollouts.
    settings = GenerationSettings(
        max_new_tokens=int(cfg.trainer_options.get("max_completion_length", 128)),
        batch_size=len(examples),
        seed=cfg.seed,
    )
    records = evaluate_examples(
        examples,
        generator=build_generator(f"hf:{model_dir}"),
        settings=settings,
        judge=build_judge(cfg.eval_judge),
        thinking=mode.thinking,
        state_set=mode.state_set,
        aspects=False,
        progress=progress,
        desc=f"eval {label}",
    )
    write_jsonl(out / "samples.jsonl", records)
    summary = aggregate_records(
        records, metrics=["response_alignment", "valid_format"], seed=cfg.seed
    )
    results = {"name": label, "mode": mode.name, "model": str(model_dir), **summary}
    write_json(out / "results.json", results)
    return {**results, "records": records}


# The demo world's verdicts, one per kind of user (src/humanlm/data/demo/README.md).
VERDICTS = ("NTA", "YTA", "NAH", "ESH")
_VERDICT = re.compile(r"\b(" + "|".join(VERDICTS) + r")\b", re.IGNORECASE)


def verdict_of(text: str | None) -> str | None:
    """The first demo-world verdict in ``text`` (``NTA``, ``YTA``, ``NAH``, ``ESH``), if any."""
    found = _VERDICT.search(text or "")
    return found.group(1).upper() if found else None


def verdict_accuracy(records: list[dict[str, Any]]) -> dict[str, float | None]:
    """Percent of replies with the real reply's verdict, per verdict of the real reply: does each
    kind of user get their own verdict, or does every user get the same one?"""
    hits: dict[str, list[bool]] = {v: [] for v in VERDICTS}
    for record in records:
        truth = verdict_of(record.get("ground_truth"))
        if truth is not None:
            hits[truth].append(verdict_of(record.get("response")) == truth)
    return {v: round(100 * sum(h) / len(h), 1) if h else None for v, h in hits.items()}


def _table_row(method: str, results: dict[str, Any]) -> dict[str, Any]:
    alignment = results["metrics"]["response_alignment"]
    valid = results["metrics"]["valid_format"]
    return {
        "method": method,
        "response_alignment": alignment["score"],
        "ci_low": alignment["ci_low"],
        "ci_high": alignment["ci_high"],
        "n": alignment["examples"],
        "valid_format": valid["score"],
        "verdict_accuracy": verdict_accuracy(results["records"]),
    }


def _train_rows(metrics_path: Path) -> list[dict[str, Any]]:
    from humanlm.train.callbacks import read_metrics

    return [r for r in read_metrics(metrics_path) if r.get("phase") == "train"]


def _step_rewards(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per GRPO step: mean reward, and mean reward and valid-format rate per state."""
    steps = []
    for record in rows:
        if "reward" not in record:
            continue
        row: dict[str, Any] = {"step": record["step"], "reward": record["reward"]}
        for state in STATE_NAMES:
            for prefix in ("state_reward", "valid_format"):
                key = f"{prefix}/{state}"
                if record.get(key) is not None:
                    row[key] = record[key]
        steps.append(row)
    return steps


def run_demo(
    out_dir: str | Path = "runs/demo",
    *,
    overrides: list[str] | None = None,
    progress: bool = True,
) -> DemoResult:
    """Train and evaluate base, SFT, GRPO and HumanLM into ``out_dir`` (earlier results replaced).

    Args:
        out_dir: the output folder.
        overrides: ``KEY=VALUE`` overrides of the demo preset (they apply to every method, so
            the budgets stay equal).
        progress: show a progress bar per phase.

    Raises:
        HumanlmError: a training run left too many rollouts unscored, or bad overrides.
    """
    from humanlm.demo.report import write_demo_report
    from humanlm.train.run import run_train

    out = Path(out_dir)
    overrides = list(overrides or [])
    cfg = load_config(demo_config_path(), overrides)
    for sub in ("base", "eval", *(m for m, _ in DEMO_METHODS)):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    started = time.monotonic()

    clock = time.monotonic()
    base_model, warmup_log = _warm_up_base(cfg, out / "base", progress=progress)
    seconds["warm-up"] = time.monotonic() - clock

    models = {"base": base_model}
    train_logs: dict[str, list[dict[str, Any]]] = {}
    for method, mode in DEMO_METHODS[1:]:
        clock = time.monotonic()
        method_cfg = load_config(
            demo_config_path(),
            # The demo keeps only final models: checkpoints would cost time and disk.
            ["trainer.save_strategy='no'", *overrides, f"mode={mode}", f"model.path={base_model}"]
            + ["warmup.steps=0"],
        )
        method_cfg.name = f"demo-{method}"
        trained = run_train(method_cfg, run_dir=out / method)
        models[method] = trained.model_dir
        train_logs[method] = _train_rows(trained.metrics_path)
        seconds[f"train {method}"] = time.monotonic() - clock

    rows, results = [], {}
    for method, mode in DEMO_METHODS:
        clock = time.monotonic()
        results[method] = _evaluate(
            models[method],
            MODES[mode],
            cfg=cfg,
            out=out / "eval" / method,
            progress=progress,
            label=method,
        )
        rows.append(_table_row(method, results[method]))
        seconds[f"eval {method}"] = time.monotonic() - clock
    seconds["total"] = time.monotonic() - started

    table = {"schema_version": TABLE_SCHEMA_VERSION, "rows": rows}
    write_json(out / "table.json", table)
    steps = _step_rewards(train_logs["humanlm"])
    write_jsonl(out / "metrics.jsonl", steps)
    report = write_demo_report(
        out,
        cfg=cfg,
        table=table,
        results=results,
        warmup_log=warmup_log,
        train_logs=train_logs,
        seconds=seconds,
    )
    return DemoResult(
        out_dir=out,
        report=report,
        table_path=out / "table.json",
        table=table,
        metrics=out / "metrics.jsonl",
        plot=out / "reward.png",
        steps=steps,
        seconds=seconds,
    )
