"""Rescoring a finished run with another judge: no simulator call, same replies, new verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from humanlm.errors import ConfigError, DataError
from humanlm.eval import run_eval
from humanlm.eval.rescore import rescore_run
from humanlm.testing import ScriptedServer
from humanlm.testing.judge_replies import judge_reply_fn

from .test_cli import app


def _records(run_dir: Path) -> dict[str, dict]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    return {r["example_id"]: r for r in map(json.loads, lines)}


@pytest.fixture
def finished(make_cfg, tmp_path) -> Path:
    cfg = make_cfg(limit=6, aspects=False, out=str(tmp_path / "source"), name="echo")
    run_eval(cfg)
    return Path(cfg.out)


def test_rescore_judges_saved_replies_without_the_simulator(finished, sim_server, tmp_path):
    asked_before = len(sim_server.chat_requests)
    with ScriptedServer(reply_fn=judge_reply_fn(lambda candidate, real: 0.25)) as other:
        spec = f"openai:other@{other.base_url}"
        result = rescore_run(finished, judge=spec, out=tmp_path / "again")
        assert other.chat_requests  # the new judge was asked
    assert len(sim_server.chat_requests) == asked_before  # nothing was generated
    old, new = _records(finished), _records(tmp_path / "again")
    assert old.keys() == new.keys()
    for key, record in new.items():
        assert record["generation"] == old[key]["generation"]
        if record["valid_format"]:
            assert record["scores"]["response_alignment"] == 0.25
            assert record["verdicts"]["response_alignment"]["judge"] == spec
    results = result.results
    assert results["judge"] == spec and results["name"] == "echo"
    assert results["rescored_from"] == str(finished.resolve())
    assert (
        results["metrics"]["diversity"]
        == json.loads((finished / "results.json").read_text())["metrics"]["diversity"]
    )  # same replies, same population


def test_rescore_default_folder_sits_next_to_the_source(finished, judge_server):
    with (finished / "config.yaml").open("a") as fh:
        fh.write("a_setting_of_another_version: 1\n")  # ignored with a warning
    result = rescore_run(finished, judge=f"openai:judge@{judge_server.base_url}")
    assert result.run_dir.parent == finished.parent
    assert result.run_dir.name.startswith("source_rescored-openai-judge")


def test_rescore_refuses_its_source_and_non_runs(finished, judge_server, tmp_path):
    spec = f"openai:judge@{judge_server.base_url}"
    with pytest.raises(ConfigError, match="new folder"):
        rescore_run(finished, judge=spec, out=finished)
    with pytest.raises(DataError, match="config.yaml"):
        rescore_run(tmp_path, judge=spec)


def test_rescore_from_the_command_line(finished, judge_server, tmp_path):
    out = tmp_path / "cli"
    args = ["eval", "--rescore", str(finished), "--judge", f"openai:judge@{judge_server.base_url}",
            "--out", str(out), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "response_alignment:" in result.output and (out / "results.json").exists()
    missing = CliRunner().invoke(app, ["eval", "--rescore", str(finished)])
    assert missing.exit_code != 0 and "--judge" in str(missing.exception)


def test_eval_without_model_or_rescore_is_a_config_error():
    result = CliRunner().invoke(app, ["eval", "--data", "demo"])
    assert isinstance(result.exception, ConfigError) and "--model" in str(result.exception)
