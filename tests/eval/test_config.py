"""Mode-aware evaluation settings: prompt and thinking from the mode saved with the model."""

from __future__ import annotations

import json

import pytest

from humanlm.config import JudgeConfig
from humanlm.errors import ConfigError
from humanlm.eval import EvalConfig
from humanlm.eval.config import SimulatorConfig, read_saved_mode
from humanlm.states.mode_file import load_mode, write_mode_file
from humanlm.states.modes import MODES


def config(**settings) -> EvalConfig:
    """An ``EvalConfig`` with the model's saved mode read, as loading a config does."""
    return read_saved_mode(EvalConfig(**settings))


def run_folder(tmp_path, mode: str | None):
    run = tmp_path / f"run-{mode}"
    (run / "model").mkdir(parents=True)
    manifest = {"schema_version": 1, "seed": 0}
    if mode is not None:
        manifest["mode"] = mode
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


EXPECTED = {  # mode -> (state set of the response prompt, thinking)
    "humanlm": ("sebvgcr", True),
    "grpo": ("r", False),
    "grpo-think": ("r", True),
    "sft": ("r_no_tag", False),
    "sft-think": ("think_r", True),
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("kind", ["hf", "vllm"])
@pytest.mark.parametrize("target", ["run", "model"])
def test_a_run_folder_gives_its_modes_prompt_and_thinking(tmp_path, mode, kind, target):
    run = run_folder(tmp_path, mode)
    path = run if target == "run" else run / "model"
    cfg = config(model=f"{kind}:{path}", judge="embedding:minilm")
    assert (cfg.effective_state_set, cfg.effective_thinking) == EXPECTED[mode]
    assert cfg.training_mode is MODES[mode]
    source = cfg.prompt_source()
    assert source["mode"] == mode and source["mode_file"] == str(run / "manifest.json")
    assert source["mode_from"] == "model"
    assert source["thinking_from"] == source["state_set_from"] == "mode"
    resolved = cfg.resolved()
    assert (resolved["state_set"], resolved["thinking"]) == EXPECTED[mode]
    assert resolved["max_new_tokens"] == (1024 if EXPECTED[mode][1] else 512)


def test_settings_override_the_mode(tmp_path):
    run = run_folder(tmp_path, "grpo-think")
    cfg = config(
        model=f"hf:{run}/model", judge="embedding:minilm", thinking=False, state_set="r_no_tag"
    )
    assert (cfg.effective_state_set, cfg.effective_thinking) == ("r_no_tag", False)
    assert cfg.prompt_source()["thinking_from"] == "setting"


@pytest.mark.parametrize("spec", ["hf:Qwen/Qwen3-8B", "openai:m@http://127.0.0.1:9/v1"])
def test_base_models_keep_the_paper_default(spec):
    cfg = config(model=spec, judge="embedding:minilm")
    assert cfg.training_mode is None
    assert (cfg.effective_state_set, cfg.effective_thinking) == ("r", True)
    assert config(model=spec, judge="embedding:minilm", thinking=False).effective_thinking is False


def test_a_folder_without_a_training_mode_is_a_base_model(tmp_path):
    run = run_folder(tmp_path, None)  # e.g. an eval folder's manifest
    assert load_mode(f"hf:{run}") is None
    other = tmp_path / "elsewhere" / "weights"
    other.mkdir(parents=True)
    (other.parent / "manifest.json").write_text(json.dumps({"mode": "sft"}))
    assert load_mode(f"hf:{other}") is None  # only a folder named model/ inherits its parent's


def test_an_unknown_mode_names_the_manifest(tmp_path):
    run = run_folder(tmp_path, "dpo")
    cfg = EvalConfig(model=f"hf:{run}", judge="embedding:minilm")  # reads no file
    with pytest.raises(ConfigError, match=r"manifest\.json: mode 'dpo'"):
        read_saved_mode(cfg)


def test_unknown_simulator_api_and_state_set_are_refused():
    with pytest.raises(ConfigError, match="simulator.api"):
        EvalConfig(model="hf:x", judge="embedding:minilm", simulator={"api": "responses"})
    with pytest.raises(ConfigError, match="state_set"):
        EvalConfig(model="hf:x", judge="embedding:minilm", state_set="xyz")


def test_a_set_mode_replaces_the_saved_one_and_says_so(tmp_path):
    # issue 21: --mode overrides the mode saved with the model, and the run's log names both.
    model = tmp_path / "checkpoint-25"
    model.mkdir()
    write_mode_file(model, "grpo-think")
    cfg = config(model=f"hf:{model}", judge="embedding:minilm", mode="sft")
    assert (cfg.effective_state_set, cfg.effective_thinking) == ("r_no_tag", False)
    source = cfg.prompt_source()
    assert (source["mode"], source["mode_from"], source["saved_mode"]) == (
        "sft",
        "setting",
        "grpo-think",
    )
    assert cfg.resolved()["mode"] == "sft" and cfg.resolved()["max_new_tokens"] == 512
    assert "replaces the training mode grpo-think" in cfg.mode_note()
    saved = config(model=f"hf:{model}", judge="embedding:minilm")
    assert saved.mode_note() is None and saved.training_mode is MODES["grpo-think"]
    base = config(model="hf:Qwen/Qwen3-8B", judge="embedding:minilm", mode="grpo")
    assert (base.effective_state_set, base.effective_thinking) == ("r", False)
    assert "carries no training mode" in base.mode_note()
    with pytest.raises(ConfigError, match="mode: 'dpo' is not one of"):
        EvalConfig(model=f"hf:{model}", judge="embedding:minilm", mode="dpo")


def test_the_config_reads_no_file_and_refuses_an_unread_mode(tmp_path):
    # issue 22: config objects do not read files; the loader reads the saved mode.
    run = run_folder(tmp_path, "sft")
    cfg = EvalConfig(model=f"hf:{run}", judge="embedding:minilm")
    with pytest.raises(ConfigError, match="read_saved_mode"):
        _ = cfg.training_mode
    with pytest.raises(ConfigError, match="read_saved_mode"):
        cfg.prompt_source()
    assert read_saved_mode(cfg).training_mode is MODES["sft"]
    assert cfg.effective_max_new_tokens == MODES["sft"].max_new_tokens


def test_the_simulator_block_holds_the_simulator_settings():
    # issue 22: one key per setting; the simulator's limits live in their own block.
    cfg = EvalConfig(
        model="hf:x", judge="embedding:minilm", simulator={"timeout_s": 7.0, "concurrency": 3}
    )
    assert cfg.simulator == SimulatorConfig(timeout_s=7.0, concurrency=3)
    settings = read_saved_mode(cfg).generation_settings()
    assert settings.concurrency == 3 and settings.retry.timeout_s == 7.0
    assert cfg.judge.timeout_s == JudgeConfig().timeout_s  # the judge keeps its own
    with pytest.raises(ConfigError, match="simulator.concurrency"):
        SimulatorConfig(concurrency=0)
