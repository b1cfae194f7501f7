"""``humanlm demo``: the whole HumanLM loop offline on a CPU, as one command.

Example:
    >>> from humanlm.demo import run_demo
    >>> result = run_demo("runs/demo")  # doctest: +SKIP

Prepare the bundled demo data -> build a tiny Qwen3 offline -> format warm-up -> GRPO over the
seven states with the offline MiniLM judge -> evaluate on the demo test split -> write
``report.md``, ``metrics.jsonl`` (mean reward per state per step) and ``reward.png``.
A tiny randomly initialised model on a CPU proves that the pipeline works end to end; it says
nothing about the quality of the method.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanlm.config import TrainConfig, load_config
from humanlm.configs import config_path
from humanlm.files import write_jsonl, write_text
from humanlm.states import STATE_NAMES
from humanlm.train.callbacks import read_metrics

__all__ = ["DemoResult", "demo_config_path", "run_demo"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its outputs, and its headline numbers."""

    out_dir: Path
    report: Path
    metrics: Path
    plot: Path
    steps: list[dict[str, Any]]
    eval_results: dict[str, Any]


def demo_config_path() -> Path:
    """The demo preset shipped in the package (``humanlm configs show demo.yaml``)."""
    return config_path("demo.yaml")


def _step_rewards(train_metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per GRPO step: mean reward, and mean reward and valid-format rate per state."""
    steps = []
    for record in train_metrics:
        if record.get("phase") != "train" or "reward" not in record:
            continue
        row: dict[str, Any] = {"step": record["step"], "reward": record["reward"]}
        for state in STATE_NAMES:
            for prefix in ("state_reward", "valid_format"):
                key = f"{prefix}/{state}"
                if record.get(key) is not None:
                    row[key] = record[key]
        steps.append(row)
    return steps


def _plot(steps: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_reward, ax_valid) = plt.subplots(1, 2, figsize=(12, 4.5))
    for state in STATE_NAMES:
        for ax, prefix in ((ax_reward, "state_reward"), (ax_valid, "valid_format")):
            points = [
                (s["step"], s[f"{prefix}/{state}"]) for s in steps if f"{prefix}/{state}" in s
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", linewidth=1, markersize=3, label=state)
    ax_reward.plot(
        [s["step"] for s in steps],
        [s["reward"] for s in steps],
        color="black",
        linewidth=2.5,
        label="all states",
    )
    ax_reward.set(
        title="GRPO reward per state (MiniLM similarity)", xlabel="step", ylabel="mean reward"
    )
    ax_valid.set(
        title="Valid-format rate per state",
        xlabel="step",
        ylabel="fraction valid",
        ylim=(-0.05, 1.05),
    )
    ax_reward.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _fmt(value: float | None, scale: float = 1.0) -> str:
    return "n/a" if value is None else f"{value * scale:.3f}"


def _report(
    cfg: TrainConfig,
    steps: list[dict[str, Any]],
    warmup: list[dict[str, Any]],
    results: dict[str, Any],
) -> str:
    half = max(1, len(steps) // 2)
    lines = [
        "# humanlm demo report",
        "",
        "> **What this shows.** A tiny, randomly initialised Qwen3 (about 10M parameters) trained for a "
        "few minutes on a CPU with an offline embedding judge. It proves that the HumanLM pipeline "
        "runs end to end (data -> state prompts -> warm-up -> GRPO with per-state rewards -> "
        "evaluation -> report); it says nothing about the quality of the method. Real runs use "
        "Qwen3-8B, an LLM judge and GPUs (see the README).",
        "",
        "## Run",
        "",
        f"- mode `{cfg.mode}` (state set `{cfg.state_set}`, hetero thinking), seed {cfg.seed}",
        f"- data: bundled demo (`{cfg.data.source}`), judge `{cfg.judge.spec}`",
        f"- warm-up: {len(warmup)} steps, loss {_fmt(warmup[0]['loss'] if warmup else None)} -> "
        f"{_fmt(warmup[-1]['loss'] if warmup else None)}",
        f"- GRPO: {len(steps)} steps of {cfg.trainer_options.get('per_device_train_batch_size')} rollouts",
        "",
        "## Reward per state",
        "",
        "![reward per state](reward.png)",
        "",
        "| state | mean reward, first half | mean reward, second half | valid format, all steps |",
        "|---|---|---|---|",
    ]
    for state in STATE_NAMES:
        key, valid_key = f"state_reward/{state}", f"valid_format/{state}"
        first = _mean([s[key] for s in steps[:half] if key in s])
        second = _mean([s[key] for s in steps[half:] if key in s])
        valid = _mean([s[valid_key] for s in steps if valid_key in s])
        lines.append(f"| {state} | {_fmt(first)} | {_fmt(second)} | {_fmt(valid)} |")
    first_all = _mean([s["reward"] for s in steps[:half]])
    second_all = _mean([s["reward"] for s in steps[half:]])
    lines += [f"| **all** | {_fmt(first_all)} | {_fmt(second_all)} | |", ""]
    metrics = results.get("metrics", {})
    lines += [
        "## Evaluation on the demo test split (response prompt, thinking on)",
        "",
        "| metric | score x100 | 95% interval | scored / examples |",
        "|---|---|---|---|",
    ]
    for name, summary in metrics.items():
        if isinstance(summary, dict) and "score" in summary:
            interval = f"{_fmt(summary.get('ci_low'))} - {_fmt(summary.get('ci_high'))}"
            lines.append(
                f"| {name} | {_fmt(summary.get('score'))} | {interval} | "
                f"{summary.get('scored')} / {summary.get('examples')} |"
            )
    lines += [
        "",
        "Files: `metrics.jsonl` (per step), `reward.png`, `train/` (run folder: config, manifest, "
        "checkpoints, model), `eval/` (samples.jsonl, results.json, report.html).",
        "",
    ]
    return "\n".join(lines)


def run_demo(
    out_dir: str | Path = "runs/demo", *, overrides: list[str] | None = None
) -> DemoResult:
    """Run the offline demo into ``out_dir`` (its ``train/`` and ``eval/`` folders are replaced)."""
    from humanlm.eval import EvalConfig, run_eval
    from humanlm.eval.report import write_report
    from humanlm.train.run import run_train

    out = Path(out_dir)
    cfg = load_config(demo_config_path(), overrides)
    for sub in ("train", "eval"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)

    trained = run_train(cfg, run_dir=out / "train")
    evaluation = run_eval(
        EvalConfig(
            model=f"hf:{trained.model_dir}",
            data="demo",
            dataset="auto",
            split="test",
            judge="embedding:minilm",
            aspects=False,
            max_new_tokens=int(cfg.trainer_options.get("max_completion_length", 160)),
            out=str(out / "eval"),
            progress=False,
        )
    )
    write_report([out / "train", out / "eval"], out=out / "eval" / "report.html")

    train_metrics = read_metrics(trained.metrics_path)
    steps = _step_rewards(train_metrics)
    warmup = [m for m in train_metrics if m.get("phase") == "warmup"]
    write_jsonl(out / "metrics.jsonl", steps)
    _plot(steps, out / "reward.png")
    results = json.loads((evaluation.run_dir / "results.json").read_text(encoding="utf-8"))
    write_text(out / "report.md", _report(cfg, steps, warmup, results))
    return DemoResult(
        out_dir=out,
        report=out / "report.md",
        metrics=out / "metrics.jsonl",
        plot=out / "reward.png",
        steps=steps,
        eval_results=results,
    )
