"""``humanlm train`` and ``humanlm demo``: thin fronts over ``run_train`` and ``run_demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo", "train"]

_TRAIN_HELP = """Train a user simulator: humanlm (GRPO over the seven states), grpo, grpo-think, sft, sft-think.

The YAML holds humanlm's own knobs (mode, model, data, judge, warmup) and TRL's options verbatim
under trainer: (both trainers), grpo: and sft: (one trainer each). KEY=VALUE overrides use dotted
paths. Unknown keys and impossible settings are all reported before any model loads. Each run
writes runs/<timestamp>_<name>/ (config.yaml, manifest.json, metrics.jsonl, checkpoints/, model/).

\b
Examples:
  humanlm train --config configs/demo.yaml
  humanlm train --config configs/demo.yaml mode=sft-think trainer.max_steps=2 name=smoke
  humanlm train --config configs/paper/reddit_humanlm.yaml judge.spec=openai:gpt-5-mini
  humanlm train --resume runs/20261128-101500_demo
  torchrun --nproc_per_node 2 -m humanlm.cli.main train --config configs/demo.yaml
  humanlm train --config configs/paper/reddit_humanlm.yaml --dry-run \
      --launcher configs/accelerate/fsdp_8gpu.yaml --gpu-memory-gb 80
  humanlm train --engine verl --dry-run data.train_files=data/reddit/train.parquet \
      data.val_files=data/reddit/val.parquet actor_rollout_ref.model.path=Qwen/Qwen3-8B
"""


def train(
    overrides: Annotated[
        list[str] | None, typer.Argument(help="KEY=VALUE overrides, e.g. trainer.max_steps=2")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Run config YAML.")] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue RUN_DIR from its latest checkpoint.")
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="trl (default) or verl.")] = "trl",
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Load nothing; print the plan (TRL options, batch arithmetic, memory per GPU) "
            "or, with --engine verl, the resolved command and config. Exit 2 if it cannot run.",
        ),
    ] = False,
    launcher: Annotated[
        Path | None,
        typer.Option(
            "--launcher",
            help="--dry-run: the accelerate config the run will launch with "
            "(configs/accelerate/*.yaml); default: this launch's WORLD_SIZE, DDP.",
        ),
    ] = None,
    gpu_memory_gb: Annotated[
        float, typer.Option("--gpu-memory-gb", help="--dry-run: memory of one GPU.")
    ] = 80.0,
) -> None:
    from humanlm.errors import ConfigError

    if engine == "verl":
        from humanlm.verl.train import run_verl

        launch = run_verl(config, list(overrides or []), dry_run=dry_run)
        if dry_run:
            typer.echo(f"# command\n{launch.command_line}")
            for note in launch.notes:
                typer.echo(f"# note: {note}")
            typer.echo(f"# resolved config\n{launch.config_yaml()}")
        return
    if engine != "trl":
        raise ConfigError(f"--engine {engine!r}: use trl or verl")
    from humanlm.config import load_config

    if dry_run:
        from humanlm.train.plan import Launcher, make_plan

        if config is None:
            raise ConfigError("--dry-run needs --config FILE")
        plan = make_plan(
            load_config(config, list(overrides or [])),
            Launcher.from_file(launcher, gpu_memory_gb=gpu_memory_gb),
        )
        typer.echo(plan.render())
        if plan.problems:
            raise ConfigError(f"{config}: the plan cannot run; see '# refused' above")
        return
    from humanlm.train.dist import is_main
    from humanlm.train.run import resume_train, run_train

    if resume is not None:
        result = resume_train(resume, overrides=list(overrides or []))
    else:
        if config is None:
            raise ConfigError("--config FILE is required (or --resume RUN_DIR)")
        result = run_train(load_config(config, list(overrides or [])))
    if is_main():
        typer.echo(f"trained {result.global_step} steps; model in {result.model_dir}")
        typer.echo(f"run folder: {result.run_dir}")


train.__doc__ = _TRAIN_HELP


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/demo"),
    overrides: Annotated[
        list[str] | None, typer.Argument(help="KEY=VALUE overrides of the demo preset.")
    ] = None,
) -> None:
    """Run the embedded default offline on a CPU: demo data, tiny model, warm-up, GRPO, eval, report.

    Writes OUT/report.md, OUT/metrics.jsonl (mean reward per state per step), OUT/reward.png,
    OUT/train/ (the training run) and OUT/eval/ (samples, results, HTML report). No network, no
    GPU, no API key. A tiny model on a CPU proves the pipeline, not the quality of the method.

    \b
    Examples:
      humanlm demo
      humanlm demo --out /tmp/demo trainer.max_steps=4 warmup.steps=100
    """
    from humanlm.demo import run_demo

    result = run_demo(out, overrides=list(overrides or []))
    steps = result.steps
    if steps:
        typer.echo(
            f"GRPO reward: step {steps[0]['step']} {steps[0]['reward']:.3f} -> "
            f"step {steps[-1]['step']} {steps[-1]['reward']:.3f}"
        )
    typer.echo(f"report: {result.report}\nmetrics: {result.metrics}\nplot: {result.plot}")
