"""Every command's ``--help``: examples, one format for defaults, one spelling for key flags."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from humanlm.cli import main as cli_main

# The command's one model: --api-key-env; a model named by its role: --<role>-api-key-env.
KEY_FLAG = re.compile(r"^--((judge|simulator|user|assistant|backend)-)?api-key-env$")


def _command_paths() -> list[list[str]]:
    """Every command and group of ``humanlm``, as the words that reach it."""
    cli_main._register()
    paths: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(cli_main.app), [])
    return paths


PATHS = _command_paths()


def test_the_walk_finds_every_command():
    names = {" ".join(p) for p in PATHS}
    assert {"eval", "judge", "serve", "simulate", "data personas", "data validate", "model"} <= (
        names
    )
    assert len(PATHS) >= 20


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "humanlm")
def test_help_has_examples_and_one_default_format(path):
    # issue 25: help showed "(default: ...)" in some commands, "[default: ...]" in others, a
    # stray " ." for empty defaults, and no examples for data personas, data validate and model.
    result = CliRunner().invoke(cli_main.app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Examples:" in text
    assert "(default:" not in text and re.search(r" \.(\s|$)", text) is None
    for flag in re.findall(r"--[a-z-]*key-env\b", text):
        assert KEY_FLAG.match(flag), flag


@pytest.mark.parametrize(
    ("path", "flag"),
    [
        (["eval"], "--api-key-env"),
        (["simulate"], "--user-key-env"),
        (["simulate"], "--assistant-key-env"),
        (["serve"], "--backend-key-env"),
        (["data", "personas"], "--cache"),
    ],
)
def test_old_spellings_are_gone(path, flag):
    result = CliRunner().invoke(cli_main.app, [*path, "--help"], terminal_width=200)
    assert re.search(rf"(^|\s){re.escape(flag)}\b", result.output) is None
