"""Every shipped config validates (recursive glob, so nested folders are never skipped)."""

import pytest
import yaml

from humanlm.config import MODES, load_config
from humanlm.configs import configs_dir

CONFIGS = configs_dir()  # src/humanlm/configs: they ship inside the package
RUN_CONFIGS = sorted(
    p for p in CONFIGS.rglob("*.yaml") if "accelerate" not in p.parts and "eval" not in p.parts
)
EVAL_CONFIGS = sorted((CONFIGS / "eval").rglob("*.yaml"))
ACCELERATE_CONFIGS = sorted((CONFIGS / "accelerate").rglob("*.yaml"))


def test_the_globs_find_configs():
    assert len(RUN_CONFIGS) >= 31  # demo + 6 datasets x 5 modes
    assert EVAL_CONFIGS
    assert len(ACCELERATE_CONFIGS) >= 3


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_run_config_validates(path):
    cfg = load_config(path)
    assert cfg.mode in MODES
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("#"), "each config opens with what it runs"
    assert "Launch:" in path.read_text()


@pytest.mark.parametrize("path", EVAL_CONFIGS, ids=lambda p: p.name)
def test_eval_config_validates(path):
    from humanlm.eval.config import EvalConfig

    cfg = load_config(path, ["model=hf:runs/x/model"], cls=EvalConfig)
    assert cfg.judge.spec.startswith("litellm:") and cfg.judge.temperature == 0.0
    assert "Launch:" in path.read_text() and path.read_text().startswith("#")


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_accelerate_config_parses(path):
    data = yaml.safe_load(path.read_text())
    assert data["distributed_type"] in {"MULTI_GPU", "FSDP", "DEEPSPEED"}
    assert data["num_processes"] >= 8


def test_paper_presets_carry_the_paper_settings():
    cfg = load_config(CONFIGS / "paper" / "reddit_humanlm.yaml")
    options = cfg.trainer_options
    assert cfg.model.path == "Qwen/Qwen3-8B" and cfg.state_set == "sebvgcr" and cfg.thinking
    assert options["num_generations"] == 4 and options["learning_rate"] == 1e-6
    assert options["beta"] == 0.001 and options["use_bias_correction_kl"] is False
    assert options["temperature"] == 0.8 and options["max_completion_length"] == 1024
    # 32 prompts x 4 rollouts per generation, 16 rollouts (4 prompts) per optimizer step on 8 GPUs.
    rows_per_step = options["per_device_train_batch_size"] * 8
    assert rows_per_step == 16 and rows_per_step * options["steps_per_generation"] == 128
    assert cfg.judge.spec == "openai:gpt-5-mini" and cfg.judge.temperature == 1.0
    assert (
        load_config(CONFIGS / "paper" / "reddit_grpo.yaml").trainer_options["max_completion_length"]
        == 512
    )


def test_the_demo_preset_exists_once():
    from humanlm.demo import demo_config_path

    package = CONFIGS.parent
    assert [p for p in package.rglob("*.yaml") if p.name == "demo.yaml"] == [demo_config_path()]
