"""Tests for the ``humanlm model`` sub-commands (humanlm.cli.model)."""

from __future__ import annotations

import os
import stat

from typer.testing import CliRunner

from humanlm.cli.model import app


def test_tiny_help_shows_an_example():
    result = CliRunner().invoke(app, ["tiny", "--help"])
    assert result.exit_code == 0
    assert "humanlm model tiny --out" in result.output


def test_tiny_reports_path_and_parameter_count(tiny_model_dir):
    result = CliRunner().invoke(app, ["tiny", "--out", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert str(tiny_model_dir) in result.output
    assert "9,822,656 parameters" in result.output  # 32-wide heads (issue 21)


def test_tiny_writes_every_file_with_the_umask_mode(tmp_path):
    # issue 24: model.safetensors was written 0600 whatever the umask.
    before = os.umask(0o022)
    try:
        result = CliRunner().invoke(app, ["tiny", "--out", str(tmp_path / "tiny")])
    finally:
        os.umask(before)
    assert result.exit_code == 0, result.output
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "tiny").iterdir()}
    assert "model.safetensors" in modes
    assert modes == dict.fromkeys(modes, 0o644)
