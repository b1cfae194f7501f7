"""``humanlm eval`` and ``humanlm report`` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from humanlm.cli.eval import eval_command
from humanlm.cli.report import report
from humanlm.errors import ConfigError

runner = CliRunner()
MIXED = str(Path(__file__).parents[1] / "fixtures" / "mixed_demo")  # a forum and a chat
app = typer.Typer()
app.command("eval")(eval_command)
app.command("report")(report)


def test_eval_prints_settings_and_writes_the_run(sim_server, judge_server, tmp_path):
    out = tmp_path / "run"
    args = [
        "eval", "--model", f"openai:sim@{sim_server.base_url}", "--data", MIXED,
        "--dataset", "auto", "--limit", "4", "--judge", f"openai:judge@{judge_server.base_url}",
        "--out", str(out), "--no-embedding", "--temperature", "0.7", "--no-progress",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for line in ("temperature: 0.7", "max_new_tokens: 1024", "no_repeat_ngram: 4", "limit: 4",
                 "thinking: True", "concurrency: 32", "judge.temperature: 0.0"):  # fmt: skip
        assert line in result.output
    assert "response_alignment:" in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["counts"]["examples"] == 4 and results["settings"]["temperature"] == 0.7
    assert all(r.body["temperature"] == 0.7 for r in sim_server.chat_requests)

    report_out = tmp_path / "rep" / "report.html"
    result = runner.invoke(app, ["report", str(out), "--out", str(report_out)])
    assert result.exit_code == 0, result.output
    assert report_out.exists() and (report_out.parent / "report.md").exists()


def test_no_thinking_halves_the_budget(sim_server, judge_server, tmp_path):
    args = [
        "eval", "--model", f"openai:sim@{sim_server.base_url}", "--data", MIXED, "--limit", "2",
        "--judge", f"openai:judge@{judge_server.base_url}", "--out", str(tmp_path / "r"),
        "--no-embedding", "--no-aspects", "--no-thinking", "--no-progress",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    body = sim_server.chat_requests[0].body
    assert body["max_tokens"] == 512 and body["chat_template_kwargs"]["enable_thinking"] is False
    assert len(judge_server.chat_requests) == 2  # both replies judged; response alignment only


def test_bad_settings_exit_with_code_2(tmp_path):
    command = [sys.executable, "-m", "humanlm.cli.main", "eval", "--model", "runs/x", "--data",
               MIXED, "--out", str(tmp_path / "r")]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "hf:PATH" in proc.stderr
    assert not Path(tmp_path / "r").exists()


def test_help_defaults_match_the_config():
    import dataclasses
    import inspect
    import re
    import typing

    from humanlm.cli.eval import _FLAG_KEYS
    from humanlm.eval import EvalConfig

    cfg = EvalConfig(model="hf:x")
    checked = 0
    hints = typing.get_type_hints(eval_command, include_extras=True)
    for name in inspect.signature(eval_command).parameters:
        option = typing.get_args(hints[name])[1]
        match = re.search(r"\(default: ([0-9.]+)\)", option.help or "")
        if match:
            value = cfg
            for part in _FLAG_KEYS.get(name, (name,))[0].split("."):
                value = getattr(value, part)
            assert float(match[1]) == value, name
            checked += 1
    assert checked >= 10
    assert dataclasses.is_dataclass(cfg.judge) and cfg.judge.temperature == 0.0


def test_eval_reads_a_yaml_config_then_flags_then_overrides(sim_server, judge_server, tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text(
        f"model: openai:sim@{sim_server.base_url}\n"
        "data: demo\n"
        "limit: 3\n"
        "temperature: 0.9\n"
        "aspects: false\n"
        "embedding: false\n"
        "progress: false\n"
        "judge:\n"
        f"  spec: openai:judge@{judge_server.base_url}\n"
        "  max_tokens: 300\n"
    )
    out = tmp_path / "run"
    args = ["eval", "--config", str(config), "--temperature", "0.6", "--out", str(out)]
    result = runner.invoke(app, [*args, "limit=2", "judge.temperature=0.3"])
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert settings["limit"] == 2 and settings["temperature"] == 0.6  # override > flag > file
    assert settings["judge"]["temperature"] == 0.3 and settings["judge"]["max_tokens"] == 300
    judge_bodies = [r.body for r in judge_server.chat_requests]
    assert judge_bodies and all(b["max_tokens"] == 300 for b in judge_bodies)
    assert all(b["temperature"] == 0.3 for b in judge_bodies)


def test_eval_config_errors_are_listed_together(tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("model: hf:x\nlimit: 0\nnosuch: 1\njudge:\n  spec: claude\n")
    result = runner.invoke(app, ["eval", "--config", str(config)])
    assert isinstance(result.exception, ConfigError)
    text = str(result.exception)
    assert "nosuch: unknown key" in text and "limit" in text and "claude" in text
