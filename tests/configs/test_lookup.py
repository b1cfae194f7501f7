"""The shipped configs are found by name, from any folder, and a file on disk wins over a name."""

from __future__ import annotations

import pytest

from humanlm.config import load_config
from humanlm.configs import config_names, config_path, configs_dir, find_config
from humanlm.errors import ConfigError

PAPER_PRESETS = {
    f"paper/{dataset}_{mode}.yaml"
    for dataset in ("amazon", "enron", "medium", "reddit", "wildchat", "youtube")
    for mode in ("humanlm", "grpo", "grpo-think", "sft", "sft-think")
}


def test_the_package_ships_the_paper_accelerate_and_demo_configs():
    assert set(config_names("paper")) == PAPER_PRESETS and len(PAPER_PRESETS) == 30
    assert "accelerate/fsdp_8gpu.yaml" in config_names("accelerate")
    assert "demo.yaml" in config_names()
    assert all(path.is_relative_to(configs_dir()) for path in map(config_path, config_names()))


@pytest.mark.parametrize(
    "name",
    [
        "paper/reddit_humanlm.yaml",  # the name `humanlm configs list` prints
        "paper/reddit_humanlm",  # without the suffix
        "configs/paper/reddit_humanlm.yaml",  # a checkout's path, as the preset headers write it
        "./paper/reddit_humanlm.yaml",
    ],
)
def test_a_name_finds_the_shipped_file_from_any_folder(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_config(name) == configs_dir() / "paper" / "reddit_humanlm.yaml"


def test_load_config_takes_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config("paper/reddit_humanlm.yaml", ["trainer.max_steps=3"])
    assert cfg.mode == "humanlm" and cfg.data.dataset == "reddit"
    assert cfg.trainer_options["max_steps"] == 3


def test_a_file_on_disk_wins_over_the_shipped_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "paper" / "reddit_humanlm.yaml"
    own.parent.mkdir()
    own.write_text((configs_dir() / "paper" / "reddit_humanlm.yaml").read_text() + "name: mine\n")
    assert find_config("paper/reddit_humanlm.yaml").resolve() == own
    assert load_config("paper/reddit_humanlm.yaml").name == "mine"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("paper/redit_humanlm.yaml", "did you mean paper/reddit_humanlm.yaml"),  # a typo
        ("../pyproject.toml", "see `humanlm configs list`"),  # outside the folder: never read
        ("", "see `humanlm configs list`"),
    ],
)
def test_an_unknown_name_is_a_config_error_naming_the_fix(name, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="does not exist") as err:
        find_config(name)
    assert fragment in str(err.value)


def test_an_absolute_path_is_never_looked_up_by_name(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as err:
        find_config(tmp_path / "paper" / "reddit_humanlm.yaml")
    assert "configs list" not in str(err.value)


def test_an_unknown_group_lists_the_groups():
    with pytest.raises(ConfigError, match="groups: accelerate, eval, paper"):
        config_names("nosuch")
