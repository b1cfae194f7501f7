"""Tests for the ``humanlm model`` sub-commands (humanlm.cli.model)."""

from __future__ import annotations

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
