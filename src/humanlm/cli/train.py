"""``humanlm train`` and ``humanlm demo``: thin fronts over ``run_train`` and ``run_demo``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from humanlm.train.preflight import Checklist

__all__ = ["demo", "train"]

_TRAIN_HELP = """Train a user simulator: humanlm (GRPO over the seven states), grpo, grpo-think, sft, sft-think.

The YAML holds humanlm's own knobs (mode, model, data, judge, warmup) and TRL's options verbatim
under trainer: (both trainers), grpo: and sft: (one trainer each). KEY=VALUE overrides use dotted
paths. Unknown keys and impossible settings are all reported before any model loads; --check (and
the start of every launch) also checks the prepared data, the model, the extras, the judges' API
keys with one small request, and the GPUs, one line each. Each run
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
  humanlm train --config paper/reddit_humanlm.yaml --check
  torchrun --nproc_per_node 2 -m humanlm.cli.main train --config configs/demo.yaml
  humanlm train --config configs/paper/reddit_humanlm.yaml --dry-run \
      --launcher configs/accelerate/fsdp_8gpu.yaml --gpu-memory-gb 80
  humanlm train --engine verl --dry-run data.train_files=data/reddit/train.parquet \
      data.val_files=data/reddit/val.parquet actor_rollout_ref.model.path=Qwen/Qwen3-8B
  humanlm train --engine verl --config paper/reddit_humanlm.yaml --dry-run --show-config
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
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Run the preflight only: trainer options, prepared data, model, extras, API "
            "keys, one small judge request, GPUs; one line each. Exit 2 if a line fails.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Load nothing; print the plan (options, batch arithmetic, memory per GPU, "
            "hardware) and the preflight on this machine (no judge request). Exit 2 if the plan "
            "cannot run.",
        ),
    ] = False,
    show_config: Annotated[
        bool,
        typer.Option("--show-config", help="--dry-run --engine verl: also print the full config."),
    ] = False,
    launcher: Annotated[
        Path | None,
        typer.Option(
            "--launcher",
            help="--dry-run/--check: the accelerate config the run will launch with "
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

        launch = run_verl(
            config,
            list(overrides or []),
            dry_run=dry_run,
            check=check,
            gpu_memory_gb=gpu_memory_gb,
        )
        if dry_run:
            typer.echo(launch.summary)
            typer.echo(f"\n# command\n{launch.command_line}")
            if show_config:
                typer.echo(f"\n# resolved config\n{launch.config_yaml()}")
        if dry_run or check:
            typer.echo(f"\n{launch.checklist.render()}" if dry_run else launch.checklist.render())
        if dry_run and launch.problems:
            raise ConfigError(
                f"{config or 'the verl config'}: the plan cannot run; see '# refused'"
            )
        if check and not launch.checklist.ok:
            raise ConfigError(_failed(launch.checklist))
        return
    if engine != "trl":
        raise ConfigError(f"--engine {engine!r}: use trl or verl")
    from humanlm.config import load_config

    if dry_run or check:
        from humanlm.train.plan import Launcher, make_plan
        from humanlm.train.preflight import run_preflight

        if config is None:
            raise ConfigError(f"{'--dry-run' if dry_run else '--check'} needs --config FILE")
        cfg = load_config(config, list(overrides or []))
        chosen = Launcher.from_file(launcher, gpu_memory_gb=gpu_memory_gb) if launcher else None
        # A dry run plans for the machine the run will have: what this one lacks is shown only.
        checklist = run_preflight(
            cfg, launcher=chosen, ask_judge=check, look_up=check, gpus_blocking=check
        )
        if dry_run:
            plan = make_plan(cfg, chosen or Launcher.from_file(None, gpu_memory_gb=gpu_memory_gb))
            typer.echo(plan.render())
            typer.echo("")
        typer.echo(checklist.render())
        options_refused = any(c.name == "trainer options" for c in checklist.failures)
        if dry_run and (plan.problems or options_refused):
            raise ConfigError(f"{config}: the plan cannot run; see '# refused' and FAIL above")
        if check and not checklist.ok:
            raise ConfigError(_failed(checklist))
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


def _failed(checklist: Checklist) -> str:
    failed, total = len(checklist.failures), len(checklist.checks)
    return f"{failed} of {total} preflight checks failed; fix the FAIL lines above"


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/demo"),
    overrides: Annotated[
        list[str] | None, typer.Argument(help="KEY=VALUE overrides of the demo preset.")
    ] = None,
) -> None:
    """A mini Table 1 offline on a CPU: base, SFT, GRPO and HumanLM on the synthetic demo world.

    The shipped demo base (a small model warmed up on the demo world's format) is the base row;
    SFT, GRPO (response reward) and HumanLM (state rewards) start from it with the same data and
    budget, each evaluated on the test split with its own prompt. Writes OUT/table.json, OUT/report.md, OUT/reward.png, OUT/loss.png,
    OUT/metrics.jsonl and one folder per method. No network, no GPU, no API key.

    \b
    Examples:
      humanlm demo
      humanlm demo --out /tmp/demo trainer.max_steps=4
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
