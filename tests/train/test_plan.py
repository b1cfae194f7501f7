"""Dry-run plans: batch arithmetic per world size, memory per GPU, refusals that name the fix."""

from __future__ import annotations

import pytest
import yaml

from humanlm.config import load_config
from humanlm.configs import configs_dir
from humanlm.demo import demo_config_path
from humanlm.errors import ConfigError
from humanlm.train.plan import (
    Launcher,
    batch_plan,
    check_plan,
    count_params,
    make_plan,
)
from humanlm.train.trainers import trl_options

CONFIGS = configs_dir()
ACCELERATE = CONFIGS / "accelerate"


def _paper(name: str, *overrides: str):
    return load_config(CONFIGS / "paper" / f"{name}.yaml", list(overrides))


def test_grpo_batch_arithmetic_follows_trl():
    cfg = load_config(
        demo_config_path(),
        [
            "trainer.per_device_train_batch_size=2",
            "trainer.gradient_accumulation_steps=1",
            "grpo.steps_per_generation=8",
            "grpo.num_generations=4",
            "trainer.max_steps=-1",
            "trainer.num_train_epochs=1",
        ],
    )
    plan = batch_plan(cfg, trl_options(cfg)[1], 8, train_examples=100)
    assert plan.rows_per_optimizer_step == 16 and plan.prompts_per_optimizer_step == 4
    assert plan.rows_per_rollout == 128 and plan.prompts_per_rollout == 32
    assert plan.optimizer_steps_per_rollout == 8
    assert plan.train_rows == 700  # 7 states per example
    assert plan.total_steps == 175  # 700 prompts / 4 prompts per step
    assert not plan.problems


def test_groups_split_across_ranks_are_refused_with_the_fix():
    cfg = load_config(
        demo_config_path(),
        ["trainer.per_device_train_batch_size=2", "grpo.steps_per_generation=1"],
    )
    # 2 rows per rank x 2 ranks = 4 rows: TRL accepts it, but each group of 4 spans two ranks.
    with pytest.raises(ConfigError) as err:
        check_plan(cfg, world_size=2)
    assert "split across ranks" in str(err.value) and "steps_per_generation=2" in str(err.value)
    assert not check_plan(cfg.__class__(**{**cfg.__dict__, "mode": "sft"}), world_size=2).problems


def test_sft_total_steps_for_the_data():
    cfg = _paper("reddit_sft", "trainer.max_steps=-1", "data.fraction=1.0")
    plan = batch_plan(cfg, trl_options(cfg)[1], 8, train_examples=1280)
    assert plan.rows_per_optimizer_step == 128  # the paper's SFT batch
    assert plan.total_steps == 20  # 2 epochs x 10 steps


def test_parameter_counts():
    assert count_params("tiny") == pytest.approx(9.9e6, rel=0.05)
    assert count_params("Qwen/Qwen3-8B") == pytest.approx(8.19e9)
    assert count_params("some/unknown-model") is None


def test_ddp_8b_on_80gb_cards_is_refused_and_fsdp2_fits():
    cfg = _paper("reddit_humanlm", "model.dtype=bfloat16", "grpo.vllm_enable_sleep_mode=false")
    plan = make_plan(cfg, Launcher.from_file(ACCELERATE / "ddp_8gpu.yaml"))
    assert plan.memory.training_gb > 80  # policy + reference + grads + AdamW, replicated
    text = " ".join(plan.problems)
    assert "fsdp_8gpu.yaml" in text and "float32 master weights" in text
    assert "# refused" in plan.render()

    plan = make_plan(_paper("reddit_humanlm"), Launcher.from_file(ACCELERATE / "fsdp_8gpu.yaml"))
    assert not plan.problems, plan.problems
    assert plan.memory.parts_gb["policy weights"] == pytest.approx(8.19 * 4 / 8, rel=0.01)
    assert plan.memory.vllm_sleeps and "# plan fits" in plan.render()
    # The same run compared across strategies: sharding divides the state by 8.
    assert plan.by_strategy["fsdp2"] == plan.by_strategy["zero3"] == plan.memory.update_gb
    assert plan.by_strategy["ddp"] == pytest.approx(8 * plan.by_strategy["fsdp2"])


def test_zero3_and_multinode_launchers(tmp_path):
    zero3 = Launcher.from_file(ACCELERATE / "zero3_8gpu.yaml")
    assert (zero3.strategy, zero3.num_processes) == ("zero3", 8)
    multi = Launcher.from_file(ACCELERATE / "multinode_2x8gpu.yaml")
    assert (multi.strategy, multi.num_processes) == ("fsdp2", 16)
    bad = tmp_path / "fsdp1.yaml"
    bad.write_text(yaml.safe_dump({"distributed_type": "FSDP", "fsdp_config": {"fsdp_version": 1}}))
    with pytest.raises(ConfigError, match="FSDP 2 only"):
        Launcher.from_file(bad)
    with pytest.raises(ConfigError, match="no such file"):
        Launcher.from_file(tmp_path / "missing.yaml")


def test_a_small_vllm_share_is_refused():
    cfg = _paper("reddit_humanlm", "grpo.vllm_gpu_memory_utilization=0.1")
    plan = make_plan(cfg, Launcher.from_file(ACCELERATE / "fsdp_8gpu.yaml"))
    assert any("vllm_gpu_memory_utilization" in p for p in plan.problems)


def test_dry_run_cli_prints_the_plan_and_refuses():
    import typer
    from typer.testing import CliRunner

    from humanlm.cli.train import train

    app = typer.Typer()
    app.command()(train)
    runner = CliRunner()
    ok = runner.invoke(
        app,
        ["--config", str(CONFIGS / "paper/reddit_humanlm.yaml"), "--dry-run",
         "--launcher", str(ACCELERATE / "fsdp_8gpu.yaml")],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "resolved GRPOConfig options" in ok.output and "memory per GPU" in ok.output
    refused = runner.invoke(
        app,
        ["--config", str(CONFIGS / "paper/reddit_humanlm.yaml"), "--dry-run",
         "--launcher", str(ACCELERATE / "ddp_8gpu.yaml"), "model.dtype=bfloat16"],
    )  # fmt: skip
    assert isinstance(refused.exception, ConfigError)  # the console script exits 2 on it
    assert "# refused" in refused.output and "cannot run" in str(refused.exception)
