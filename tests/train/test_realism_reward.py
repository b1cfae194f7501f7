"""The realism reward in training: its settings are checked before anything loads, and GRPO on the
tiny model trains with it next to the state reward, weighed by ``realism.weight``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from humanlm.config import load_config
from humanlm.demo import demo_config_path
from humanlm.errors import ConfigError
from humanlm.testing import RecordedRequest, Reply, ScriptedServer
from humanlm.train.callbacks import read_metrics
from humanlm.train.run import run_train
from humanlm.train.trainers import trl_options

_CANDIDATE = re.compile(r'<candidate id="([AB])">\n(.*?)\n</candidate>', flags=re.DOTALL)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["mode=sft", "realism.weight=0.5"], "realism.weight: mode sft trains without rewards"),
        (["realism.weight=0.5", "grpo.reward_weights=[1, 1]"], "trainer.reward_weights: set by"),
        (["realism.weight=-1"], "realism.weight: must be >= 0"),
        (["realism.weight=1", "realism.detector=judge"], "realism.judge.spec: the judge detector"),
        (["realism.detector=bert"], "realism.detector: must be one of style, judge"),
        (["realism.copy_span_words=0"], "copy_span_words >= 1"),
    ],
)
def test_bad_realism_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(demo_config_path(), overrides)


def test_realism_weight_becomes_trls_reward_weights():
    on = load_config(demo_config_path(), ["mode=grpo", "realism.weight=0.25"])
    off = load_config(demo_config_path(), ["mode=grpo"])
    assert trl_options(on)[1]["reward_weights"] == [1.0, 0.25]
    assert "reward_weights" not in trl_options(off)[1]


def _longer_is_human(request: RecordedRequest) -> Reply:
    """A scripted detector: the longer candidate is the human's."""
    found = dict(_CANDIDATE.findall(request.prompt))
    pick = max(found, key=lambda k: len(found[k]))
    return Reply(content=json.dumps({"human": pick, "reason": "more detail"}))


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(model_dir) / "model.safetensors"))


@pytest.mark.slow
def test_grpo_trains_with_the_realism_reward_of_an_llm_detector(
    warmed_model_dir, tmp_path, one_torch_thread
):
    weight = 0.5
    with ScriptedServer(reply_fn=_longer_is_human) as detector:
        cfg = load_config(
            demo_config_path(),
            [
                f"model.path={warmed_model_dir}",
                "mode=grpo",
                "warmup.steps=0",
                "data.limit=6",
                "trainer.max_steps=2",
                "trainer.save_steps=2",
                "trainer.per_device_train_batch_size=8",
                "grpo.max_completion_length=48",
                f"realism.weight={weight}",
                "realism.detector=judge",
                f"realism.judge.spec=openai:detector@{detector.base_url}",
                "realism.judge.timeout_s=120",
            ],
        )
        result = run_train(cfg, run_dir=tmp_path / "run")
        asked = [r.prompt for r in detector.chat_requests]
    steps = [m for m in read_metrics(result.metrics_path) if "reward" in m and "loss" in m]
    assert [m["step"] for m in steps] == [1, 2]
    assert asked and all('<candidate id="A">' in p for p in asked)
    assert len(asked) % 2 == 0  # every pair in both orders
    for m in steps:
        assert 0.0 <= m["rewards/realism_reward/mean"] <= 1.0
        assert "realism/length_guard_frac" in m and "realism/copy_guard_frac" in m
        # Every row is a response row, so no reward is None: the step's reward is the weighed sum.
        expected = m["rewards/state_reward/mean"] + weight * m["rewards/realism_reward/mean"]
        assert m["reward"] == pytest.approx(expected, abs=1e-5)
    before, after = _weights(warmed_model_dir), _weights(result.model_dir)
    assert any(not (before[k] == after[k]).all() for k in before), "training changed no weight"


def test_the_yaml_of_docs_training_md_loads(tmp_path):
    text = (Path(__file__).parents[2] / "docs" / "training.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    (tmp_path / "run.yaml").write_text(block)
    cfg = load_config(tmp_path / "run.yaml")
    assert cfg.realism.weight == 0.5 and cfg.realism.detector == "judge"
    assert cfg.realism.judge.temperature == 0.0  # the block's own default, kept under a partial
    assert trl_options(cfg)[1]["reward_weights"] == [1.0, 0.5]


def test_verl_refuses_the_realism_reward(tmp_path):
    from humanlm.verl.preset import run_config_overrides

    (tmp_path / "run.yaml").write_text("mode: grpo\nrealism:\n  weight: 0.5\n")
    with pytest.raises(ConfigError, match="realism reward trains on the TRL engine only"):
        run_config_overrides(tmp_path / "run.yaml")
