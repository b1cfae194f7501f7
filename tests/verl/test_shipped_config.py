"""The shipped verl config repeats the paper's values; each must equal its one definition."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

import humanlm.verl
from humanlm.config import JudgeConfig
from humanlm.eval.config import EvalConfig
from humanlm.states.modes import MODES
from humanlm.train import paper

SHIPPED = Path(humanlm.verl.__file__).parent / "config" / "humanlm_grpo.yaml"


def test_the_verl_config_agrees_with_the_paper_table():
    # issue 22: the verl YAML must stay (Hydra reads it), so a test holds it to the table.
    cfg = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    actor = cfg["actor_rollout_ref"]["actor"]
    rollout = cfg["actor_rollout_ref"]["rollout"]
    assert float(actor["optim"]["lr"]) == paper.PAPER_GRPO["learning_rate"]
    assert actor["kl_loss_coef"] == paper.PAPER_GRPO["beta"]
    assert actor["kl_loss_type"] == "low_var_kl" and not paper.PAPER_GRPO["use_bias_correction_kl"]
    assert rollout["n"] == paper.PAPER_GRPO["num_generations"]
    assert rollout["temperature"] == paper.PAPER_GRPO["temperature"]
    assert rollout["val_kwargs"]["temperature"] == EvalConfig.temperature
    assert cfg["data"]["train_batch_size"] == paper.PROMPTS_PER_ROLLOUT
    assert actor["ppo_mini_batch_size"] * paper.UPDATES_PER_ROLLOUT == paper.PROMPTS_PER_ROLLOUT
    assert (
        cfg["data"]["max_response_length"] == MODES[cfg["data"]["humanlm"]["mode"]].max_new_tokens
    )
    assert cfg["trainer"]["save_freq"] == cfg["trainer"]["test_freq"] == paper.VAL_EVERY_ROLLOUTS
    judge = cfg["reward"]["reward_kwargs"]["judge"]
    defaults = dataclasses.asdict(JudgeConfig())
    for key in ("temperature", "concurrency", "timeout_s", "max_retries", "cache"):
        assert judge[key] == defaults[key], key
