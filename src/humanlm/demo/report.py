"""The demo's ``report.md``: the comparison first, then the run, curves, samples, the paper apart.

Written by ``run_demo``; everything in it is read from the run's own files and
numbers (nothing is typed in by hand), except the paper's table, which is labelled as such and
kept in its own section: it was measured with another model, other data and another judge.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from humanlm.config import TrainConfig
from humanlm.demo.charts import loss_chart, reward_chart
from humanlm.files import atomic_path, write_text
from humanlm.paper import PAPER_AVG, PAPER_RESULTS, PAPER_SOURCE
from humanlm.states.modes import MODES

__all__ = ["reward_trend", "write_demo_report"]

logger = logging.getLogger(__name__)

_SHOWN = 2  # best and worst samples shown per method
_EXCERPT = 220
_TREND = 5  # steps averaged at each end of a reward curve


def _write_png(path: Path, png: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def reward_trend(rows: Sequence[Mapping[str, Any]], window: int = _TREND) -> tuple[float, float]:
    """Mean reward over the first and over the last ``window`` steps of a GRPO run.

    Raises:
        ValueError: no step has a reward.
    """
    rewards = [float(r["reward"]) for r in rows if isinstance(r.get("reward"), int | float)]
    if not rewards:
        raise ValueError("no step has a reward")
    head, tail = rewards[:window], rewards[-window:]
    return sum(head) / len(head), sum(tail) / len(tail)


def _prompt_of(mode_name: str) -> str:
    mode = MODES[mode_name]
    kind = "raw reply" if mode.state_set == "r_no_tag" else "<response> tags"
    return f"`{mode_name}` response prompt, {kind}, thinking {'on' if mode.thinking else 'off'}"


def _clip(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _samples(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Best and worst distinct examples; equal scores are reported as a tie."""
    scored = [r for r in records if (r.get("scores") or {}).get("response_alignment") is not None]
    if not scored:
        return ["No scored samples."]
    scored = sorted(
        scored, key=lambda r: (-r["scores"]["response_alignment"], str(r["example_id"]))
    )
    best = scored[:_SHOWN]
    worst = [r for r in scored[::-1][:_SHOWN] if r not in best]
    top, bottom = (
        scored[0]["scores"]["response_alignment"],
        scored[-1]["scores"]["response_alignment"],
    )
    lines = []
    if top == bottom:
        lines.append(f"All {len(scored)} samples tie at {100 * top:.1f}; two of them:")
        groups = [("tied", best)]
    else:
        groups = [("best", best), ("worst", worst)]
    lines += ["", "| | score | user | reply written | real reply |", "|---|---|---|---|---|"]
    for name, group in groups:
        for r in group:
            written = r.get("response") or f"(invalid format) {r.get('generation')}"
            lines.append(
                f"| {name} | {100 * r['scores']['response_alignment']:.1f} | {r.get('user_id')} | "
                f"{_cell(_clip(written))} | {_cell(_clip(r.get('ground_truth')))} |"
            )
    return lines


def _comparison(table: Mapping[str, Any], results: Mapping[str, Any]) -> list[str]:
    lines = [
        "| method | response alignment x100 | 95% interval | valid format % | n | right verdict % "
        "(NTA / YTA / NAH / ESH users) | evaluated with |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table["rows"]:
        mode = results[row["method"]]["mode"]
        kinds = " / ".join(_fmt(v, 0) for v in row.get("verdict_accuracy", {}).values())
        lines.append(
            f"| {row['method']} | {_fmt(row['response_alignment'])} | "
            f"{_fmt(row['ci_low'])} - {_fmt(row['ci_high'])} | {_fmt(row['valid_format'], 0)} | "
            f"{row['n']} | {kinds} | {_prompt_of(mode)} |"
        )
    by_method = {r["method"]: r for r in table["rows"]}
    base, human = by_method.get("base"), by_method.get("humanlm")
    if base and human and None not in (base["response_alignment"], human["response_alignment"]):
        diff = human["response_alignment"] - base["response_alignment"]
        apart = human["ci_low"] > base["ci_high"] or base["ci_low"] > human["ci_high"]
        lines += [
            "",
            f"HumanLM minus base: {diff:+.1f} points; the 95% intervals "
            f"{'do not overlap' if apart else 'overlap'}.",
        ]
    return lines


def _paper() -> list[str]:
    lines = [
        "## For reference only: the paper's numbers (not comparable with the table above)",
        "",
        f"Source: {PAPER_SOURCE}. Qwen3-8B on the real Humanual data with an LLM judge; this demo "
        "uses a ~0.5M-parameter model, a synthetic world and an embedding judge, so no number here "
        "can be compared with a number above.",
        "",
        "| paper method | Opinion | average of six datasets |",
        "|---|---|---|",
    ]
    for method, scores in PAPER_RESULTS.items():
        lines.append(f"| {method} | {scores['reddit']:.1f} | {PAPER_AVG[method]:.1f} |")
    return lines


def write_demo_report(
    out: Path,
    *,
    cfg: TrainConfig,
    table: Mapping[str, Any],
    results: Mapping[str, Mapping[str, Any]],
    warmup_log: Sequence[Mapping[str, Any]],
    train_logs: Mapping[str, Sequence[Mapping[str, Any]]],
    seconds: Mapping[str, float],
) -> Path:
    """Write ``report.md``, ``reward.png`` and ``loss.png`` into ``out``; return the report path."""
    rewards = reward_chart(
        [
            ("HumanLM: reward per state", train_logs.get("humanlm", [])),
            ("GRPO: response reward", train_logs.get("grpo", [])),
        ],
        title="GRPO rewards on the demo world (MiniLM similarity with the real reply)",
    )
    if rewards is not None:
        _write_png(out / "reward.png", rewards)
    losses = loss_chart(
        [
            ("format warm-up (base)", warmup_log),
            *((f"{m} training", train_logs.get(m, [])) for m in ("sft", "grpo", "humanlm")),
        ],
        title="Losses per phase (separate axes)",
    )
    if losses is not None:
        _write_png(out / "loss.png", losses)

    trainer = cfg.trainer_options
    lines = [
        "# humanlm demo: a mini Table 1 on a synthetic world",
        "",
        "> **What this is.** A small, synthetic forum world (bundled with humanlm): 8 users of 4 "
        "kinds whose personas decide their verdict, emotion and style, so the same post gets "
        "opposite verdicts from different users; test posts never appear in training. A small "
        "Qwen3 on a 2k-token tokenizer of the world's text (the shipped demo base, warmed up on an "
        "enlarged version of the world) is trained on it for a few minutes on a CPU. Training "
        f"rewards come from `{cfg.judge.spec}`; the evaluation judge is offline "
        f"(`{cfg.eval_judge.spec}`: cosine similarity of MiniLM sentence "
        "embeddings with the real reply). It shows the method's mechanics on a world where they "
        "can work; it is not evidence about real users or large models.",
        "",
        "## Response alignment on the demo test split",
        "",
        *_comparison(table, results),
        "",
        "Every method starts from the same base checkpoint (the format warm-up) and gets the same "
        f"data and budget: {trainer.get('max_steps')} steps of "
        f"{trainer.get('per_device_train_batch_size')} rows. The base's warm-up pairs each prompt "
        "with the answer of another user on the same post, so it knows the format and what "
        "answers look like, not who gives which.",
        "",
        "## Run",
        "",
        f"- wall time: {seconds.get('total', 0):.0f} s in all",
        *(f"  - {phase}: {value:.0f} s" for phase, value in seconds.items() if phase != "total"),
        f"- seed {cfg.seed}; model `{cfg.model.path}`; warm-up {cfg.warmup.steps} steps of "
        f"{cfg.warmup.batch_size} rows at learning rate {cfg.warmup.learning_rate}",
        f"- GRPO: {trainer.get('num_generations')} rollouts per prompt, temperature "
        f"{trainer.get('temperature')}, learning rate {cfg.grpo.get('learning_rate', trainer.get('learning_rate'))}; "
        f"SFT learning rate {cfg.sft.get('learning_rate', trainer.get('learning_rate'))}",
        "",
        "## Training curves",
        "",
    ]
    for method in ("humanlm", "grpo"):
        rows = train_logs.get(method) or []
        try:
            first, last = reward_trend(rows)
        except ValueError:
            continue
        lines.append(
            f"- {method} mean reward: {first:.3f} over the first {_TREND} steps -> "
            f"{last:.3f} over the last {_TREND}"
        )
    lines += [
        "",
        "![rewards](reward.png)",
        "",
        "![losses](loss.png)",
        "",
        "## Samples",
        "",
    ]
    for row in table["rows"]:
        records = results[row["method"]].get("records") or []
        lines += [f"### {row['method']}", "", *_samples(records), ""]
    lines += [
        *_paper(),
        "",
        "Files: `table.json`, `metrics.jsonl` (HumanLM per step), `reward.png`, `loss.png`, "
        "`base/` (warm-up checkpoint), `sft/`, `grpo/`, `humanlm/` (run folders), "
        "`eval/<method>/` (`samples.jsonl`, `results.json`).",
        "",
    ]
    path = out / "report.md"
    write_text(path, "\n".join(lines))
    return path
