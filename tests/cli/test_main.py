"""The ``humanlm`` command itself: usage mistakes are one line and exit 2, never a traceback."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from humanlm.cli.main import _RedactURLs
from humanlm.errors import ConfigError
from humanlm.extras import require_extra
from humanlm.generate import build_generator


def humanlm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "humanlm.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nosuch"], "No such command 'nosuch'"),  # unknown command
        (["eval", "--nosuch"], "No such option: --nosuch"),  # mistyped flag
        (["eval"], "model: required"),  # no model, from flags or a config
        (["data", "prepare"], "Missing option '--input'"),  # missing option of a sub-command
        (["data", "prepare", "--input"], "requires an argument"),  # option without its value
        (["data", "nosuch"], "No such command 'nosuch'"),  # unknown sub-command
        (["train", "--engine", "nosuch", "--config", "x.yaml"], "--engine 'nosuch'"),  # bad value
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(args, needle):
    done = humanlm(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]


@pytest.mark.parametrize("args", [[], ["data"], ["model"], ["--help"], ["data", "--help"]])
def test_bare_groups_and_help_print_help_and_succeed(args):
    done = humanlm(*args)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "Traceback" not in done.stderr


def test_version():
    from importlib.metadata import version

    done = humanlm("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"humanlm {version('humanlm')}"


def test_missing_extra_names_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'humanlm\[vllm\]'"):
        require_extra("vllm", needed_by="test")
    with pytest.raises(ConfigError, match=r"simulator vllm:m .*pip install 'humanlm\[vllm\]'"):
        build_generator("vllm:m")


def test_log_lines_lose_url_credentials():
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "POST %s", ("http://user:secret@127.0.0.1/v1",), None
    )
    _RedactURLs().filter(record)
    assert record.getMessage() == "POST http://127.0.0.1/v1"
