"""A humanlm run config (a paper preset) on verl: the same data, budget and lengths as on TRL.

``humanlm train --engine verl --config paper/reddit_humanlm.yaml`` starts from the shipped verl
config (``humanlm_grpo``) and sets, from the run config, what the TRL run would use:

- ``data.train_files`` / ``data.val_files``: the prepared splits under ``data.source``;
- ``data.train_max_samples``: ``data.fraction`` (after ``data.limit``) of the training examples,
  drawn with ``data.seed`` = the run's seed; ``data.val_max_samples``: ``val_limit``;
- ``trainer.total_training_steps``: ``trainer.max_steps`` in rollout steps (TRL counts optimizer
  steps; one rollout step is ``steps_per_generation / gradient_accumulation_steps`` of them), with
  enough epochs to reach it, and ``trainer.save_freq`` / ``trainer.test_freq`` from
  ``save_steps`` / ``val_every`` the same way;
- ``data.max_prompt_length``: ``data.max_prompt_tokens``; ``data.max_response_length``:
  ``max_completion_length`` (the mode's ``Mode.max_new_tokens`` unless set);
- the mode, seed, model, group size, rollout temperature, learning rate, weight decay, KL
  coefficient, the train judge and the run name.

The user's own Hydra overrides come after these and win. SFT modes are refused (verl here trains
GRPO only).

Example:
    >>> overrides = run_config_overrides(find_config("paper/reddit_humanlm.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from humanlm.errors import ConfigError

__all__ = ["is_run_config", "run_config_overrides"]


def is_run_config(path: Path) -> bool:
    """Whether ``path`` is a humanlm run config (top-level ``mode:``) rather than a verl config."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False  # Hydra reports the file's own problem when it composes it
    return isinstance(data, dict) and "mode" in data and "defaults" not in data


# Strings Hydra reads back unchanged without quotes (paths, hub ids, specs, names).
_PLAIN = re.compile(r"[A-Za-z_/.][A-Za-z0-9_./:@-]*")
_KEYWORDS = {"true", "false", "null", "nan", "inf"}


def _hydra_value(value: Any) -> str:
    """``value`` as a Hydra override value; a string is quoted unless it reads back as itself."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{_hydra_value(k)}:{_hydra_value(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _KEYWORDS:
        return text
    # Hydra unescapes backslashes only before a quote (or the closing one).
    escaped = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, text).replace("'", "\\'")
    return f"'{escaped}'"


def _local(path: str) -> str:
    """A local model folder made absolute (verl's workers may start elsewhere); a hub id as is."""
    return str(Path(path).resolve()) if Path(path).exists() else path


def _rollout_steps(optimizer_steps: int, per_rollout: float) -> int:
    return max(1, round(optimizer_steps / per_rollout))


def _train_samples(cfg: Any, train_file: Path) -> int:
    """verl's ``train_max_samples`` for the run's ``data.limit`` and ``data.fraction`` (-1: all)."""
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(train_file).metadata.num_rows
    count = min(rows, cfg.data.limit) if cfg.data.limit is not None else rows
    if cfg.data.fraction < 1.0:
        count = max(1, round(count * cfg.data.fraction))  # as humanlm.train.data.take_fraction
    return -1 if count >= rows else count


def run_config_overrides(path: Path) -> list[str]:
    """The verl overrides that train the run config at ``path`` as TRL would.

    Raises:
        ConfigError: an invalid run config, an SFT mode, the realism reward, or splits that are
            not prepared.
    """
    from humanlm.config import load_config
    from humanlm.train.plan import batch_plan
    from humanlm.train.trainers import trl_options

    cfg = load_config(path)
    if cfg.trainer_kind != "grpo":
        raise ConfigError(
            f"{path}: mode {cfg.mode} is SFT; verl trains the GRPO modes (humanlm, grpo, "
            "grpo-think). Train it without --engine verl"
        )
    if cfg.realism.weight:
        raise ConfigError(
            f"{path}: realism.weight: the realism reward trains on the TRL engine only; set it "
            "to 0 or train without --engine verl"
        )
    if not cfg.data.val_split:
        raise ConfigError(f"{path}: data.val_split: verl validates on a split; set one")
    source = Path(cfg.data.source)
    train_file = source / f"{cfg.data.train_split}.parquet"
    val_file = source / f"{cfg.data.val_split}.parquet"
    missing = [str(f) for f in (train_file, val_file) if not f.is_file()]
    if missing:
        raise ConfigError(
            f"{path}: data.source {source}: verl reads prepared splits, missing "
            f"{', '.join(missing)}; prepare them with humanlm data prepare --input SOURCE "
            f"--dataset {cfg.data.dataset} --out {source}"
        )
    options = trl_options(cfg)[1]
    per_rollout = batch_plan(cfg, options, 1, train_examples=None).optimizer_steps_per_rollout
    values: dict[str, Any] = {
        "data.train_files": str(train_file.resolve()),
        "data.val_files": str(val_file.resolve()),
        "data.train_max_samples": _train_samples(cfg, train_file),
        "data.val_max_samples": cfg.val_limit,
        "data.seed": cfg.seed,
        "data.humanlm.mode": cfg.mode,
        "data.humanlm.seed": cfg.seed,
        "data.max_response_length": int(options["max_completion_length"]),
        "actor_rollout_ref.model.path": _local(cfg.model.path),
        "actor_rollout_ref.rollout.n": int(options["num_generations"]),
        "actor_rollout_ref.rollout.temperature": float(options["temperature"]),
        "actor_rollout_ref.actor.optim.lr": float(options["learning_rate"]),
        "actor_rollout_ref.actor.kl_loss_coef": float(options["beta"]),
        "trainer.experiment_name": cfg.name,
    }
    if cfg.data.max_prompt_tokens is not None:
        values["data.max_prompt_length"] = cfg.data.max_prompt_tokens
    if "weight_decay" in options:
        values["actor_rollout_ref.actor.optim.weight_decay"] = float(options["weight_decay"])
    if int(options.get("max_steps", -1) or -1) > 0:
        steps = _rollout_steps(options["max_steps"], per_rollout)
        values["trainer.total_training_steps"] = steps
        # verl also stops after total_epochs passes over the data; as TRL's max_steps, the step
        # budget decides (a pass has at least one step), so a small subset is drawn again.
        values["trainer.total_epochs"] = steps
    if int(options.get("save_steps", 0) or 0) > 0:
        values["trainer.save_freq"] = _rollout_steps(options["save_steps"], per_rollout)
    values["trainer.test_freq"] = (
        _rollout_steps(cfg.val_every, per_rollout) if cfg.val_every else -1
    )
    overrides = [f"{key}={_hydra_value(value)}" for key, value in values.items()]
    # ++ sets a judge key whether or not the shipped config lists it.
    cache = str(Path(cfg.judge.cache).resolve()) if cfg.judge.cache else ""
    judge = dataclasses.replace(cfg.judge, cache=cache)
    for field in dataclasses.fields(judge):
        value = getattr(judge, field.name)
        overrides.append(f"++reward.reward_kwargs.judge.{field.name}={_hydra_value(value)}")
    return overrides
