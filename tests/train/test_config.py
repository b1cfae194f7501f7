"""Run config: YAML + overrides, every problem reported at once, before any model loads."""

import pytest

from humanlm.config import apply_overrides, from_dict, load_config
from humanlm.errors import ConfigError


def test_overrides_reach_nested_keys_and_parse_scalars():
    data = apply_overrides(
        {}, ["mode=grpo", "trainer.max_steps=2", "judge.temperature=0.5", "name=x"]
    )
    assert data == {
        "mode": "grpo",
        "trainer": {"max_steps": 2},
        "judge": {"temperature": 0.5},
        "name": "x",
    }


def test_all_problems_are_listed_together():
    with pytest.raises(ConfigError) as err:
        from_dict(
            {
                "mode": "bogus",  # unknown mode
                "modle": {},  # misspelt section
                "judge": {"spec": 3, "nope": 1},  # wrong type + unknown key
                "warmup": {"steps": -1},  # impossible value
                "trainer": {"output_dir": "x"},  # set by humanlm
            }
        )
    message = str(err.value)
    for needle in (
        "mode: 'bogus'",
        "modle: unknown key",
        "judge.nope: unknown key",
        "judge.spec: expected a string",
        "warmup.steps",
        "trainer.output_dir",
    ):
        assert needle in message
    assert len(err.value.problems) == 6


def test_mode_decides_state_set_thinking_and_trainer():
    cases = {
        "humanlm": ("sebvgcr", True, "grpo"),
        "grpo": ("r", False, "grpo"),
        "grpo-think": ("r", True, "grpo"),
        "sft": ("r_no_tag", False, "sft"),
        "sft-think": ("think_r", True, "sft"),
    }
    for mode, expected in cases.items():
        cfg = from_dict({"mode": mode})
        assert (cfg.state_set, cfg.thinking, cfg.trainer_kind) == expected


def test_mode_specific_trainer_options_merge_over_shared_ones():
    cfg = from_dict(
        {
            "mode": "sft",
            "trainer": {"max_steps": 5, "learning_rate": 1.0},
            "sft": {"learning_rate": 2.0},
            "grpo": {"num_generations": 4},
        }
    )
    assert cfg.trainer_options == {"max_steps": 5, "learning_rate": 2.0}


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5])
def test_data_fraction_must_lie_in_the_unit_interval(fraction):
    with pytest.raises(ConfigError, match="data.fraction"):
        from_dict({"data": {"fraction": fraction}})
    assert from_dict({"data": {"fraction": 0.25}}).data.fraction == 0.25
