"""`humanlm configs list/show/copy`, and `humanlm train --config NAME` outside a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import humanlm
from humanlm.cli.configs import app
from humanlm.configs import configs_dir
from humanlm.errors import ConfigError

runner = CliRunner()


def test_list_names_the_30_paper_presets():
    result = runner.invoke(app, ["list", "paper"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 30 and all(line.startswith("paper/") for line in lines)
    reddit = next(line for line in lines if line.startswith("paper/reddit_humanlm.yaml "))
    assert "Paper reproduction: HumanLM" in reddit  # the first line of the file says what it runs


def test_list_without_a_group_shows_every_config():
    names = runner.invoke(app, ["list", "--names-only"]).output.splitlines()
    assert "demo.yaml" in names and "accelerate/ddp_8gpu.yaml" in names
    assert sum(name.startswith("paper/") for name in names) == 30


def test_show_prints_the_file_or_its_path():
    text = runner.invoke(app, ["show", "paper/reddit_grpo"]).output
    assert yaml.safe_load(text)["mode"] == "grpo"
    path = runner.invoke(app, ["show", "--path", "accelerate/fsdp_8gpu.yaml"]).output.strip()
    assert Path(path) == configs_dir() / "accelerate" / "fsdp_8gpu.yaml"
    assert yaml.safe_load(Path(path).read_text())["distributed_type"] == "FSDP"


def test_copy_writes_a_file_then_refuses_to_overwrite_it(tmp_path):
    shipped = (configs_dir() / "paper" / "reddit_humanlm.yaml").read_text()
    result = runner.invoke(app, ["copy", "paper/reddit_humanlm.yaml", str(tmp_path) + "/"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reddit_humanlm.yaml").read_text() == shipped
    again = runner.invoke(app, ["copy", "paper/reddit_humanlm.yaml", str(tmp_path)])
    assert isinstance(again.exception, ConfigError) and "--force" in str(again.exception)
    renamed = runner.invoke(app, ["copy", "paper/reddit_humanlm", str(tmp_path / "mine.yaml")])
    assert renamed.exit_code == 0 and (tmp_path / "mine.yaml").read_text() == shipped


def test_copy_a_folder(tmp_path):
    result = runner.invoke(app, ["copy", "accelerate", str(tmp_path / "acc")])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "acc").iterdir())
    assert written == sorted(p.name for p in (configs_dir() / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("command", ["list", "show", "copy"])
def test_help_shows_examples(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert f"humanlm configs {command} " in result.output


def _humanlm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Run from a folder without configs/, importing this humanlm (not another installed copy).
    src = str(Path(humanlm.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "humanlm.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_console_lists_the_presets_from_any_folder(tmp_path):
    listed = _humanlm("configs", "list", "paper", "--names-only", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 30
    missing = _humanlm("configs", "show", "paper/nosuch", cwd=tmp_path)
    assert missing.returncode == 2 and "humanlm configs list" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.slow  # `humanlm train` imports torch and transformers before it reads the config
def test_train_takes_a_shipped_preset_by_name(tmp_path):
    # The unknown key is reported after the preset is found and read, before any model loads.
    done = _humanlm(
        "train", "--config", "paper/reddit_humanlm.yaml", "judge.nosuch=1", cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "judge.nosuch: unknown key" in done.stderr and "Traceback" not in done.stderr
