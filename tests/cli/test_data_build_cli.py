"""`humanlm data build`, `data personas` and `data validate` through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
from typer.testing import CliRunner

from humanlm.cli.data import app
from humanlm.errors import ConfigError
from humanlm.testing import ScriptedServer
from tests.data.samples import write_jsonl
from tests.enrich.test_personas import persona_json, user_of
from tests.ingest.test_dataset import forum_items, write_items

runner = CliRunner()


def test_build_with_options_prints_a_summary(tmp_path):
    source = write_items(tmp_path / "items.csv", forum_items(threads=20))
    result = runner.invoke(
        app,
        [
            "build",
            "-i",
            str(source),
            "-o",
            str(tmp_path / "out"),
            "--fixed-persona",
            "A forum user.",
            "--split-ratios",
            "80/10/10",
            "--max-reply-words",
            "40",
            "--min-replies-per-user",
            "2",
            "--no-seen-users",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "train: " in result.output and "validated: " in result.output
    info = json.loads((tmp_path / "out" / "build_summary.json").read_text())
    assert info["options"]["ratios"] == "0.8/0.1/0.1" and info["options"]["seen_users"] is False
    assert pq.read_table(tmp_path / "out" / "test.parquet").num_rows > 0


def test_build_without_a_persona_choice_fails_clearly(tmp_path):
    source = write_items(tmp_path / "items.jsonl", forum_items(threads=2))
    result = runner.invoke(app, ["build", "-i", str(source), "-o", str(tmp_path / "out")])
    assert isinstance(result.exception, ConfigError)
    assert "--no-personas" in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_console_script_exit_codes(tmp_path):
    source = write_items(tmp_path / "items.jsonl", forum_items(threads=2))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "humanlm.cli.main",
            "data",
            "build",
            "-i",
            str(source),
            "-o",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "error: build needs a persona source: --llm SPEC" in done.stderr
    assert "Traceback" not in done.stderr


def test_personas_command_with_a_scripted_llm_and_fixed_text(tmp_path):
    source = write_items(tmp_path / "items.jsonl", forum_items(threads=10))
    out = tmp_path / "out"
    assert (
        runner.invoke(app, ["build", "-i", str(source), "-o", str(out), "--no-personas"]).exit_code
        == 0
    )
    with ScriptedServer(reply_fn=lambda r: persona_json(user_of(r))) as server:
        result = runner.invoke(
            app,
            [
                "personas",
                "--input",
                str(out),
                "--llm",
                f"openai:m@{server.base_url}",
                "--k",
                "3",
                "--concurrency",
                "2",
            ],
        )
    assert result.exit_code == 0, result.output
    assert "personas: 5 users (5 generated, 0 reused)" in result.output
    result = runner.invoke(app, ["personas", "--input", str(out), "--fixed", "Someone."])
    assert result.exit_code == 0 and "one fixed text" in result.output
    assert set(pq.read_table(out / "train.parquet").column("persona").to_pylist()) == {"Someone."}


def test_validate_exit_status(tmp_path):
    source = write_items(tmp_path / "items.jsonl", forum_items(threads=10))
    out = tmp_path / "out"
    runner.invoke(app, ["build", "-i", str(source), "-o", str(out), "--fixed-persona", "x"])
    clean = runner.invoke(app, ["validate", str(out)])
    assert clean.exit_code == 0 and clean.output.strip().endswith("no problems")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": [], "completion": "", "user_id": "a"}])
    result = runner.invoke(app, ["validate", str(bad), "--dataset", "generic"])
    assert result.exit_code == 1
    assert "train row 0 field 'completion': completion is empty" in result.output
    assert "train row 0 field 'post_id': missing post_id" in result.output


def test_help_shows_examples():
    result = runner.invoke(app, ["build", "--help"])
    assert result.exit_code == 0 and "humanlm data build " in result.output
    for command in ("personas", "validate"):
        assert runner.invoke(app, [command, "--help"]).exit_code == 0


def test_validate_exits_1_on_no_rows_or_rows_waiting_for_personas(tmp_path):
    # issue 24: a built folder whose every row waited in persona_failed.parquet was "0 rows, no
    # problems" with exit 0, and so was an empty file.
    source = write_items(tmp_path / "items.jsonl", forum_items(threads=6))
    out = tmp_path / "out"
    build = ["build", "-i", str(source), "-o", str(out), "--max-retries", "0"]
    with ScriptedServer(reply_fn=lambda r: '{"demographics": {') as server:
        built = runner.invoke(app, [*build, "--llm", f"openai:p@{server.base_url}"])
    assert built.exit_code == 1, built.output
    held = pq.read_table(out / "persona_failed.parquet").num_rows
    waiting = runner.invoke(app, ["validate", str(out)])
    assert waiting.exit_code == 1, waiting.output
    (line,) = [x for x in waiting.stderr.splitlines() if x.startswith("error:")]
    assert f"no rows in {out} (train, val, test checked); {held} rows wait for personas" in line
    assert f"humanlm data personas --input {out} --llm SPEC" in line
    direct = runner.invoke(app, ["validate", str(out / "persona_failed.parquet")])
    assert direct.exit_code == 1 and f"{held} rows wait for personas" in direct.stderr

    with ScriptedServer(reply_fn=lambda r: persona_json(user_of(r))) as server:
        healed = runner.invoke(
            app, ["personas", "-i", str(out), "--llm", f"openai:p@{server.base_url}"]
        )
    assert healed.exit_code == 0, healed.output
    clean = runner.invoke(app, ["validate", str(out)])
    assert clean.exit_code == 0 and clean.output.strip().endswith("no problems")

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    nothing = runner.invoke(app, ["validate", str(empty), "--dataset", "generic"])
    assert nothing.exit_code == 1 and f"error: no rows in {empty}" in nothing.stderr
