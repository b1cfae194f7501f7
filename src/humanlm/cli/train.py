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
writes runs/<timestamp>_<name>/ (config.yaml, manifest.json, metrics.jsonl, checkpoints/, model/);
every checkpoint and model/ carry the training mode (humanlm_mode.json) for eval and serve.
--config takes a file or the name of a shipped config (humanlm configs list). With --engine verl it
takes a verl config, or a run config whose data share, step budget and lengths then go to verl
(KEY=VALUE are then Hydra overrides of the verl config).

\b
Examples:
  humanlm train --config demo.yaml
  humanlm train --config demo.yaml mode=sft-think trainer.max_steps=2 name=smoke
  humanlm train --config paper/reddit_humanlm.yaml judge.spec=openai:gpt-5-mini
  humanlm train --resume runs/20261128-101500_demo
  torchrun --nproc_per_node 2 -m humanlm.cli.main train --config configs/demo.yaml
  humanlm train --config configs/paper/reddit_humanlm.yaml --dry-run \
      --launcher configs/accelerate/fsdp_8gpu.yaml --gpu-memory-gb 80
  humanlm train --engine verl --dry-run data.train_files=data/reddit/train.parquet \
      data.val_files=data/reddit/val.parquet actor_rollout_ref.model.path=Qwen/Qwen3-8B
  humanlm train --engine verl --config paper/reddit_humanlm.yaml --dry-run
"""


def train(
    overrides: Annotated[
        list[str] | None, typer.Argument(help="KEY=VALUE overrides, e.g. trainer.max_steps=2")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Run config YAML, or a shipped config's name."),
    ] = None,
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
        from humanlm.extras import require_extra

        require_extra("verl", needed_by="humanlm train --engine verl")
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
    """A mini Table 1 offline on a CPU: base, SFT, GRPO and HumanLM on the synthetic demo world.

    One shared format warm-up (the base), then SFT, GRPO (response reward) and HumanLM (state
    rewards) from it with the same data and budget, each evaluated on the test split with its
    own prompt. Writes OUT/table.json, OUT/report.md, OUT/reward.png, OUT/loss.png,
    OUT/metrics.jsonl and one folder per method. No network, no GPU, no API key.

    \b
    Examples:
      humanlm demo
      humanlm demo --out /tmp/demo trainer.max_steps=4 warmup.steps=20
    """
    from humanlm.demo.report import reward_trend
    from humanlm.demo.run import run_demo

    result = run_demo(out, overrides=list(overrides or []))
    for row in result.table["rows"]:
        score = row["response_alignment"]
        shown = (
            "n/a" if score is None else f"{score:.1f} [{row['ci_low']:.1f}, {row['ci_high']:.1f}]"
        )
        typer.echo(
            f"{row['method']:>8}: response alignment {shown}, valid {row['valid_format']:.0f}%"
        )
    if result.steps:
        first, last = reward_trend(result.steps)
        typer.echo(f"HumanLM reward (mean of first / last 5 steps): {first:.3f} -> {last:.3f}")
    typer.echo(f"time: {result.seconds['total']:.0f} s")
    typer.echo(f"report: {result.report}\ntable: {result.table_path}\nplot: {result.plot}")
