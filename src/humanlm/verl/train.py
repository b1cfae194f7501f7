"""Compose, check and launch HumanLM GRPO on verl.

Run:
    python -m humanlm.verl.train [--config PATH] [--dry-run] [HYDRA_OVERRIDES ...]
    humanlm train --engine verl --config PATH [--dry-run] [HYDRA_OVERRIDES ...]

Example:
    >>> launch = run_verl(None, ["data.train_files=d/train.parquet", "data.val_files=d/val.parquet",
    ...                          "actor_rollout_ref.model.path=Qwen/Qwen3-8B"], dry_run=True)
    ...  # doctest: +SKIP
    >>> print(launch.command_line)  # doctest: +SKIP

The config (default: the shipped ``config/humanlm_grpo.yaml``) is a Hydra file layered on verl's
``ppo_trainer`` config; a config of your own can start from ours with
``defaults: [humanlm_grpo, _self_]`` (both are found through ``SEARCHPATH``). A humanlm run config
(``paper/reddit_humanlm.yaml``, a file with a top-level ``mode:``) runs on the shipped config with
its data share, step budget and lengths carried over (``humanlm.verl.preset``); the overrides
then apply on top. A launch writes the training mode (``humanlm_mode.json``) into
``trainer.default_local_dir``, above the ``global_step_N/actor`` checkpoints, where ``humanlm eval``
finds it; when verl returns, the files it wrote there get the umask's mode. ``run_verl``
composes it with the overrides, checks it and starts verl's own entry point
(``verl.trainer.main_ppo``) in this process; ``dry_run`` stops before Ray starts and needs no GPU.
Both the default trainer (``trainer.use_v1=true``, needs the ``TransferQueue`` package) and the
legacy one (``trainer.use_v1=false``) are supported.

Refused before anything starts, all problems at once: missing train/val files or model; legacy
reward keys (``custom_reward_function.*``, ``reward_model.*``, ``sandbox_fusion.*``, which
``main_ppo`` ignores without a word); ``rollout.n < 2`` (no group to compare); a PPO mini-batch
that does not divide the batch; more than one reward worker (groups would be split); a reward
manager, dataset or agent loop other than HumanLM's; a reward model; identical train and val files;
a critic-based estimator; bad ``data.humanlm`` / ``reward.reward_kwargs`` settings; whatever verl's
own ``validate_config`` refuses. When launching (and with ``check``), every failed line of the
preflight (``humanlm.verl.plan.verl_preflight``): unreadable or unprepared data files, a model that
does not resolve, a missing package (verl, the rollout engine, ``TransferQueue`` for the default
trainer, litellm), a missing judge API key, a judge that refuses or does not answer one small
request, fewer GPUs than ``trainer.n_gpus_per_node``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import math
import shlex
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from humanlm.errors import ConfigError, HumanlmError
from humanlm.extras import require_extra
from humanlm.files import apply_umask
from humanlm.train.preflight import Checklist
from humanlm.verl.plan import VerlPlan, data_parallel_size, verl_plan, verl_preflight

__all__ = [
    "DEFAULT_CONFIG",
    "SEARCHPATH",
    "VerlLaunch",
    "check_config",
    "compose_config",
    "has_transfer_queue",
    "main",
    "run_verl",
    "verl_problems",
]

DEFAULT_CONFIG = "humanlm_grpo"
_REQUIRED = ("data.train_files", "data.val_files", "actor_rollout_ref.model.path")
# Lets a config name verl's `ppo_trainer` and our `humanlm_grpo` in its defaults list.
SEARCHPATH = "hydra.searchpath=[pkg://verl.trainer.config,pkg://humanlm.verl.config]"
_SECTIONS = ("data", "actor_rollout_ref", "algorithm", "reward", "trainer")
_LEGACY_SECTIONS = ("custom_reward_function", "reward_model", "sandbox_fusion")
_REWARD_MODULES = ("pkg://humanlm.verl.reward", "pkg://humanlm/verl/reward")
_DATASET_MODULES = ("pkg://humanlm.verl.dataset", "pkg://humanlm/verl/dataset")
_TRANSFER_QUEUE_HINT = (
    "the default verl trainer (trainer.use_v1=true) needs the TransferQueue package: "
    "pip install TransferQueue==0.1.11 tensordict==0.10.0 packaging==25.0 (see docs/verl.md), "
    "or set trainer.use_v1=false for the legacy trainer"
)


@dataclass(frozen=True)
class VerlLaunch:
    """A composed and checked verl run.

    Attributes:
        config: the composed config (verl's ``ppo_trainer`` + ours + overrides).
        command: verl's own entry point with the same config, for the record or a cluster script.
        notes: environment remarks a dry run found (e.g. TransferQueue missing).
        plan: hardware, batch and memory per GPU, and what it refuses.
        checklist: the preflight on this machine (data, model, extras, key, judge, GPUs).
    """

    config: Any
    command: list[str]
    notes: tuple[str, ...] = ()
    plan: VerlPlan | None = None
    checklist: Checklist = Checklist(())

    @property
    def summary(self) -> str:
        """The plan as ``--dry-run`` prints it (the full config only on request)."""
        return self.plan.render() if self.plan else ""

    @property
    def problems(self) -> tuple[str, ...]:
        return self.plan.problems if self.plan else ()

    @property
    def command_line(self) -> str:
        return shlex.join(self.command)

    def config_yaml(self) -> str:
        """The resolved config as YAML."""
        from omegaconf import OmegaConf

        return OmegaConf.to_yaml(self.config, resolve=True)


def _config_file(config_path: str | Path | None) -> Path:
    """The YAML file: a path, the name of a config shipped in ``humanlm/verl/config``, or a shipped
    run config (``paper/reddit_humanlm.yaml``)."""
    shipped = Path(str(resources.files("humanlm.verl") / "config"))
    if config_path is None:
        return shipped / f"{DEFAULT_CONFIG}.yaml"
    path = Path(config_path)
    if not path.suffix and (shipped / f"{path.name}.yaml").is_file():
        return shipped / f"{path.name}.yaml"
    if not path.is_file():
        from humanlm.configs import find_config

        return find_config(path).resolve()
    return path.resolve()


@contextlib.contextmanager
def _hydra(config_dir: Path) -> Iterator[None]:
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        yield


def compose_config(config_path: str | Path | None, overrides: Sequence[str] = ()) -> Any:
    """Compose the Hydra config with ``overrides`` (Hydra syntax: ``a.b=1``, ``+new.key=2``).

    Raises:
        ConfigError: the file is missing or Hydra refuses the file or an override.
    """
    from hydra import compose
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    file = _config_file(config_path)
    try:
        with _hydra(file.parent):
            return compose(config_name=file.stem, overrides=[SEARCHPATH, *overrides])
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"{file}: {err}") from None


def _set_leaves(node: Any, prefix: str) -> Iterator[str]:
    from omegaconf import DictConfig

    for key in node:
        value = node.get(key)
        if isinstance(value, DictConfig):
            yield from _set_leaves(value, f"{prefix}{key}.")
        elif value is not None:
            yield f"{prefix}{key}"


def _legacy_problems(cfg: Any) -> list[str]:
    """Set legacy reward keys: verl's ``main_ppo`` ignores them without a word."""
    problems = []
    for section in _LEGACY_SECTIONS:
        if section in cfg:
            problems += [
                f"{key}: legacy reward key, ignored by verl's main_ppo; use the reward.* section"
                for key in _set_leaves(cfg[section], f"{section}.")
            ]
    return problems


def _data_parallel_problems(cfg: Any, *, mini: int, batch: int) -> list[str]:
    """verl splits each PPO mini-batch's rollouts evenly over the data-parallel ranks."""
    n = int(cfg.actor_rollout_ref.rollout.n)
    dp = data_parallel_size(cfg)
    if mini < 1 or batch % mini or n < 2 or (mini * n) % dp == 0:
        return []  # the first two are reported on their own
    step = dp // math.gcd(dp, n)
    fix = -(-mini // step) * step
    return [
        f"actor_rollout_ref.actor.ppo_mini_batch_size={mini}: a PPO mini-batch of {mini} prompts x "
        f"{n} rollouts = {mini * n} must divide over the {dp} data-parallel ranks "
        f"(trainer.nnodes x trainer.n_gpus_per_node / model-parallel size); use "
        f"ppo_mini_batch_size={fix} with data.train_batch_size a multiple of it"
    ]


def _grpo_problems(cfg: Any) -> list[str]:
    """Group and batch settings the judged groups rely on."""
    problems = []
    rollout, actor = cfg.actor_rollout_ref.rollout, cfg.actor_rollout_ref.actor
    batch, mini = int(cfg.data.train_batch_size), int(actor.ppo_mini_batch_size)
    if rollout.n < 2:
        problems.append(f"actor_rollout_ref.rollout.n={rollout.n}: GRPO needs n >= 2 per group")
    if rollout.val_kwargs.n < 1:
        problems.append("actor_rollout_ref.rollout.val_kwargs.n: must be >= 1")
    if mini < 1 or mini > batch or batch % mini:
        problems.append(
            f"actor_rollout_ref.actor.ppo_mini_batch_size={mini} must divide "
            f"data.train_batch_size={batch} (both count prompts)"
        )
    problems += _data_parallel_problems(cfg, mini=mini, batch=batch)
    workers = int(rollout.agent.num_workers)
    if workers < 1 or (batch * rollout.n) % workers:
        problems.append(
            f"actor_rollout_ref.rollout.agent.num_workers={workers} must divide the "
            f"{batch * rollout.n} rollouts of a step"
        )
    if cfg.algorithm.adv_estimator == "gae":
        problems.append("algorithm.adv_estimator=gae ignores the judged groups; use grpo")
    if cfg.reward.num_workers != 1:
        problems.append(
            f"reward.num_workers={cfg.reward.num_workers}: must be 1, verl sends each rollout to "
            "a random reward worker and a group split across workers cannot be judged together"
        )
    if str(cfg.data.train_files) == str(cfg.data.val_files):
        problems.append("data.val_files: must differ from data.train_files (the val split)")
    return problems


def _wiring_problems(cfg: Any) -> list[str]:
    """The HumanLM dataset, agent loop and reward manager, and their own settings."""
    from humanlm.judge import parse_spec
    from humanlm.verl.agent_loop import AGENT_NAME
    from humanlm.verl.dataset import dataset_settings
    from humanlm.verl.reward import reward_settings

    problems = []
    reward, manager = cfg.reward, cfg.reward.reward_manager
    if (
        manager.source != "importlib"
        or manager.name != "HumanlmRewardManager"
        or manager.module.path not in _REWARD_MODULES
    ):
        problems.append(
            "reward.reward_manager: must be source=importlib, name=HumanlmRewardManager, "
            "module.path=pkg://humanlm.verl.reward"
        )
    if reward.reward_model.enable:
        problems.append(
            "reward.reward_model.enable: HumanLM rewards come from the judge; set false"
        )
    if reward.custom_reward_function.path is not None:
        problems.append("reward.custom_reward_function.path: unused by HumanLM's manager; set null")
    custom = cfg.data.custom_cls
    if custom.path not in _DATASET_MODULES or custom.name != "HumanlmDataset":
        problems.append("data.custom_cls: must be pkg://humanlm.verl.dataset / HumanlmDataset")
    if cfg.actor_rollout_ref.rollout.agent.default_agent_loop != AGENT_NAME:
        problems.append(f"actor_rollout_ref.rollout.agent.default_agent_loop: must be {AGENT_NAME}")
    for check in (
        lambda: dataset_settings(cfg.data),
        lambda: parse_spec(reward_settings(reward.get("reward_kwargs")).judge.spec),
    ):
        try:
            check()
        except ConfigError as err:
            problems += err.problems
    return problems


def verl_problems(cfg: Any) -> list[str]:
    """What verl's own ``validate_config`` refuses (run on a copy; it prints and may mutate)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    copy = OmegaConf.create(OmegaConf.to_container(cfg))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            validate_config(copy, need_reference_policy(copy), need_critic(copy))
    except (AssertionError, ValueError, TypeError, OmegaConfBaseException) as err:
        return [f"verl: {err}"]
    return []


def has_transfer_queue() -> bool:
    """Whether the package verl's default trainer (``trainer.use_v1``) imports is installed."""
    return importlib.util.find_spec("transfer_queue") is not None


def _launch_problems(cfg: Any) -> list[str]:
    # Data, model, extras (TransferQueue for the default trainer), the judge's key and one
    # small request, GPUs: here, not in a Ray worker after model loading.
    return [check.detail for check in verl_preflight(cfg, ask_judge=True).failures]


def check_config(cfg: Any, *, launching: bool = False) -> None:
    """Refuse a config HumanLM cannot train with; every problem is reported at once.

    Args:
        cfg: a composed config.
        launching: also run the preflight (data, model, extras, judge key and request, GPUs).

    Raises:
        ConfigError: the list of problems, each saying what to set instead.
    """
    from omegaconf import OmegaConf

    absent = [name for name in _SECTIONS if name not in cfg]
    if absent:
        raise ConfigError(
            f"not a verl config (no {', '.join(absent)}): it must build on verl's ppo_trainer, "
            "e.g. `defaults: [humanlm_grpo, _self_]`; TRL run configs go to `humanlm train` "
            "without --engine verl"
        )
    missing = [key for key in _REQUIRED if OmegaConf.select(cfg, key) in (None, "")]
    if missing:
        raise ConfigError(
            [f"{key}: required (set it as an override, {key}=...)" for key in missing]
        )
    problems = [*_legacy_problems(cfg), *_grpo_problems(cfg), *_wiring_problems(cfg)]
    if not problems:
        problems = verl_problems(cfg)
    if not problems and launching:
        problems = _launch_problems(cfg)
    if problems:
        raise ConfigError(problems)


def run_verl(
    config_path: str | Path | None,
    overrides: Sequence[str] = (),
    *,
    dry_run: bool = False,
    check: bool = False,
    gpu_memory_gb: float = 80.0,
) -> VerlLaunch:
    """Compose, check and (unless ``dry_run``) run HumanLM GRPO with verl's ``main_ppo``.

    Args:
        config_path: a Hydra YAML layered on ``ppo_trainer`` (``None``: the shipped config), or a
            humanlm run config such as ``paper/reddit_humanlm.yaml``.
        overrides: Hydra overrides.
        dry_run: stop after the checks: no Ray, no GPU, no judge calls; the preflight's
            environment lines are shown, not enforced.
        check: stop after the preflight, judge request included (``--check``).
        gpu_memory_gb: memory of one GPU, for the plan.

    Returns:
        The composed run (config and the equivalent ``verl.trainer.main_ppo`` command).

    Raises:
        ConfigError: see the module docstring for what is refused.
    """
    from humanlm.verl.preset import is_run_config, run_config_overrides

    file = _config_file(config_path)
    if is_run_config(file):
        overrides = [*run_config_overrides(file), *overrides]
        file = _config_file(None)
    cfg = compose_config(file, overrides)
    check_config(cfg)
    enforced = check or not dry_run
    checklist = verl_preflight(cfg, ask_judge=enforced, gpus_blocking=enforced)
    if not dry_run and not check:
        checklist.raise_failures()
    command = [
        sys.executable,
        "-m",
        "verl.trainer.main_ppo",
        f"--config-path={file.parent}",
        f"--config-name={file.stem}",
        SEARCHPATH,
        *overrides,
    ]
    notes = ()
    if cfg.trainer.use_v1 and not has_transfer_queue():
        notes = (_TRANSFER_QUEUE_HINT,)
    plan = verl_plan(cfg, gpu_memory_gb=gpu_memory_gb)
    launch = VerlLaunch(cfg, command, notes, plan=plan, checklist=checklist)
    if not dry_run and not check:
        require_extra("verl", needed_by="humanlm train --engine verl")
        from verl.trainer.main_ppo import main as verl_main

        from humanlm.states.mode_file import write_mode_file

        write_mode_file(cfg.trainer.default_local_dir, cfg.data.humanlm.get("mode", "humanlm"))
        try:
            verl_main(cfg)  # Hydra's entry point accepts a composed config as is
        finally:
            apply_umask(cfg.trainer.default_local_dir)  # its weights are written 0600
    return launch


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m humanlm.verl.train``: user errors print one message and return 2."""
    parser = argparse.ArgumentParser(
        prog="python -m humanlm.verl.train",
        description="Compose, check and launch HumanLM GRPO on verl (see docs/verl.md).",
    )
    parser.add_argument("--config", default=None, help="Hydra YAML (default: humanlm_grpo)")
    parser.add_argument("--dry-run", action="store_true", help="print command and config, stop")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.train_files=...")
    args = parser.parse_args(argv)
    try:
        launch = run_verl(args.config, args.overrides, dry_run=args.dry_run)
    except HumanlmError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    if args.dry_run:
        sys.stdout.write(f"# command\n{launch.command_line}\n")
        for note in launch.notes:
            sys.stdout.write(f"# note: {note}\n")
        sys.stdout.write(f"# resolved config\n{launch.config_yaml()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
