"""Compose and check the config of an assistant trained on verl against a simulated user.

``plan_assistant`` is the dry run of the ``humanlm_assistant`` agent loop
(``humanlm.verl.assistant_loop``): it composes ``config/humanlm_assistant.yaml`` (or a config of
your own that starts from it) with Hydra overrides and refuses, all problems at once: missing or
identical train/val files, no model, a ``humanlm_assistant`` node that ``assistant_settings``
refuses, a simulator or judge spec that does not parse, another default agent loop, ``rollout.n``
below 2, and whatever verl's own ``validate_config`` refuses. No Ray, no GPU, no model calls.
The checked config goes to verl's ``verl.trainer.main_ppo.run_ppo`` to train.

Example:
    >>> cfg = plan_assistant(None, ["data.train_files=s/train.parquet",
    ...     "data.val_files=s/val.parquet", "actor_rollout_ref.model.path=Qwen/Qwen3-0.6B",
    ...     "humanlm_assistant.user=openai:sim@http://127.0.0.1:8000/v1"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from humanlm.errors import ConfigError
from humanlm.generate.build import GENERATOR_KINDS
from humanlm.llm.specs import parse_spec
from humanlm.verl.assistant_loop import AGENT_NAME, assistant_settings
from humanlm.verl.train import compose_config, verl_problems

__all__ = ["ASSISTANT_CONFIG", "LOOP_FILE", "assistant_config_problems", "plan_assistant"]

ASSISTANT_CONFIG = "humanlm_assistant"
LOOP_FILE = "assistant_agent_loops.yaml"


def assistant_config_problems(cfg: Any) -> list[str]:
    """Every problem of a composed config, as one-line messages that name the fix."""
    problems = []
    files = {key: cfg.data.get(key) for key in ("train_files", "val_files")}
    for key, value in files.items():
        if not value:
            problems.append(f"data.{key}: set the scenario parquet file (scenario_rows)")
        elif not Path(str(value)).is_file():
            problems.append(f"data.{key}: no such file {value}")
    if files["train_files"] and files["train_files"] == files["val_files"]:
        problems.append("data.val_files: must differ from data.train_files")
    if not cfg.actor_rollout_ref.model.get("path"):
        problems.append("actor_rollout_ref.model.path: set the assistant policy model")
    rollout = cfg.actor_rollout_ref.rollout
    if rollout.agent.default_agent_loop != AGENT_NAME:
        problems.append(f"actor_rollout_ref.rollout.agent.default_agent_loop: must be {AGENT_NAME}")
    if rollout.n < 2:
        problems.append("actor_rollout_ref.rollout.n: GRPO compares a group; set 2 or more")
    try:
        settings = assistant_settings(cfg.get("humanlm_assistant"))
    except ConfigError as err:
        return problems + err.problems
    for role, spec, kinds in (
        ("simulator", settings.user, GENERATOR_KINDS),
        ("judge", settings.judge, ("openai", "litellm")),
    ):
        if spec is not None:
            try:
                parse_spec(spec, role=role, kinds=kinds)
            except ConfigError as err:
                problems += [f"humanlm_assistant: {p}" for p in err.problems]
    return problems + verl_problems(cfg)


def plan_assistant(config_path: str | Path | None, overrides: Sequence[str] = ()) -> Any:
    """Compose the config with ``overrides`` and check it (the dry run); return it.

    Raises:
        ConfigError: every problem ``assistant_config_problems`` finds, or Hydra's refusal.
    """
    from omegaconf import open_dict

    cfg = compose_config(config_path or ASSISTANT_CONFIG, overrides)
    agent = cfg.actor_rollout_ref.rollout.agent
    if agent.get("agent_loop_config_path") is None:
        with open_dict(cfg):
            agent.agent_loop_config_path = str(
                resources.files("humanlm.verl") / "config" / LOOP_FILE
            )
    problems = assistant_config_problems(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg
