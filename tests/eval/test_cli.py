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


def test_eval_prints_settings_with_verbose_and_writes_the_run(sim_server, judge_server, tmp_path):
    out = tmp_path / "run"
    args = [
        "eval", "--model", f"openai:sim@{sim_server.base_url}", "--data", MIXED,
        "--dataset", "auto", "--limit", "4", "--judge", f"openai:judge@{judge_server.base_url}",
        "--out", str(out), "--no-embedding", "--temperature", "0.7", "--no-progress", "-v",
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
    import inspect
    import typing

    from humanlm.cli.eval import _FLAG_KEYS
    from humanlm.eval import EvalConfig

    cfg = EvalConfig(model="hf:x")
    checked = 0
    hints = typing.get_type_hints(eval_command, include_extras=True)
    for name, parameter in inspect.signature(eval_command).parameters.items():
        if parameter.default is None or name not in hints or name == "ctx":
            continue
        value = cfg
        for part in _FLAG_KEYS.get(name, name).split("."):
            value = getattr(value, part, parameter.default)
        assert parameter.default == value, name
        checked += 1
    assert checked >= 20
    assert cfg.judge.temperature == 0.0


def test_eval_output_is_quiet_by_default(sim_server, judge_server, tmp_path):
    # issue 25: every eval printed a 45-line settings dump; the summary printed "accuracy None".
    args = [a for a in eval_args(sim_server, judge_server, tmp_path / "run")
            if a != "--no-population"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "detectability:" in result.stdout
    assert "settings:" not in result.output and "temperature: 0.4" not in result.output
    assert "None" not in result.stdout and "response_alignment:" in result.stdout
    assert len(result.stdout.splitlines()) < 15


def test_eval_without_judge_writes_nothing_when_litellm_is_missing(monkeypatch, tmp_path):
    # issue 25: the default judge needs litellm; eval said so after 4 s and left a run folder.
    import sys as _sys

    monkeypatch.setitem(_sys.modules, "litellm", None)  # hidden, as if not installed
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["eval", "--model", "hf:runs/x/model", "--data", "demo"])
    assert isinstance(result.exception, ConfigError)
    line = str(result.exception)
    assert "\n" not in line and "pip install 'humanlm[litellm]'" in line
    for choice in ("--judge openai:MODEL[@URL]", "--judge embedding:minilm", "litellm:"):
        assert choice in line
    assert list(tmp_path.iterdir()) == []


def test_a_judge_key_that_is_unset_stops_eval_before_its_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("NO_SUCH_JUDGE_KEY", raising=False)
    out = tmp_path / "run"
    args = ["eval", "--model", "hf:runs/x/model", "--data", "demo", "--judge",
            "openai:gpt-5-mini", "--judge-api-key-env", "NO_SUCH_JUDGE_KEY", "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert isinstance(result.exception, ConfigError)
    assert "NO_SUCH_JUDGE_KEY" in str(result.exception) and "--judge-api-key-env" in str(
        result.exception
    )
    assert not out.exists()


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


def repeated_then_clean(asked: set[str]):
    """A judge whose first reply to each prompt names "score" twice (0.4, then 1.0) in every
    entry, and whose second reply says 0.4 once."""
    from humanlm.testing import Reply
    from humanlm.testing.judge_replies import asks_for_gate, candidates_in, group_reply

    def reply(request):
        numbered = candidates_in(request.prompt)
        voice = {k: False for k in numbered} if asks_for_gate(request.prompt) else None
        if request.prompt in asked:
            return Reply(content=group_reply({k: 0.4 for k in numbered}, assistant_voice=voice))
        asked.add(request.prompt)
        gate = ', "assistant_voice": false' if voice else ""
        entries = ", ".join(f'"{k}": {{"score": 0.4{gate}, "score": 1.0}}' for k in numbered)
        return Reply(content=f'{{"key_points": ["a point"], "scores": {{{entries}}}}}')

    return reply


def eval_args(sim_server, judge_server, out: Path, *extra: str) -> list[str]:
    return [
        "eval", "--model", f"openai:sim@{sim_server.base_url}", "--data", "demo", "--limit", "3",
        "--judge", f"openai:judge@{judge_server.base_url}", "--out", str(out), "--no-embedding",
        "--no-aspects", "--no-progress", "--no-population", *extra,
    ]  # fmt: skip


def test_a_repeated_score_key_is_never_read_last_wins(sim_server, judge_server, tmp_path):
    # issue 24: {"score": 0.4, ..., "score": 1.0} made eval print 100.00 where the truth is 40.
    asked: set[str] = set()
    judge_server.reply_fn = repeated_then_clean(asked)
    result = runner.invoke(app, eval_args(sim_server, judge_server, tmp_path / "run"))
    assert result.exit_code == 0, result.output
    ra = json.loads((tmp_path / "run" / "results.json").read_text())["metrics"]
    assert ra["response_alignment"]["score"] == 40.0 and ra["response_alignment"]["scored"] == 3
    assert "response_alignment: 40.00" in result.output
    assert len(judge_server.chat_requests) == 2 * len(asked) == 6  # each refused reply re-asked


def test_an_eval_that_scored_nothing_exits_1_unless_allowed(sim_server, judge_server, tmp_path):
    # issue 24: an eval whose judge scored nothing exited 0 and read as a success.
    from humanlm.testing import faults

    judge_server.reply_fn = lambda request: faults.server_error()
    args = eval_args(sim_server, judge_server, tmp_path / "run", "--judge-max-retries", "0")
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "nothing scored: response_alignment has no score for any of the 3 examples" in line
    assert "--allow-unscored" in line and "response_alignment: n/a" in result.output
    allowed = runner.invoke(app, [*args, "--allow-unscored"])
    assert allowed.exit_code == 0, allowed.output
    assert "error:" not in allowed.stderr
    assert len(sim_server.chat_requests) == 3  # the rerun judged the saved replies again


def test_each_limit_flag_sets_one_key(sim_server, judge_server, tmp_path):
    # issue 22: --timeout, --max-retries and --concurrency each filled two keys.
    args = eval_args(
        sim_server, judge_server, tmp_path / "run", "--limit", "1",
        "--judge-timeout", "9", "--simulator-timeout", "7", "--judge-max-retries", "2",
        "--simulator-max-retries", "3", "--judge-concurrency", "5", "--simulator-concurrency", "4",
        "--verbose",
    )  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for line in ("judge.timeout_s: 9.0", "simulator.timeout_s: 7.0", "judge.max_retries: 2",
                 "simulator.max_retries: 3", "judge.concurrency: 5",
                 "simulator.concurrency: 4"):  # fmt: skip
        assert f"  {line}" in result.output.splitlines(), line
    refused = runner.invoke(app, [*args, "--timeout", "3"])
    assert refused.exit_code == 2 and "No such option: --timeout" in refused.output
