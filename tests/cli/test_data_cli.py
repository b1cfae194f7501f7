"""`humanlm data prepare` and `humanlm data show` through the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from humanlm.cli.data import app
from humanlm.data.prepare import load_prepared
from humanlm.errors import ConfigError, DataError
from humanlm.states import build_messages, is_thinking
from humanlm.states.template import load_chat_template, render_chat
from tests.data.samples import SAMPLE, sample_rows, write_jsonl

runner = CliRunner()


@pytest.fixture(scope="module")
def prepared_file(tmp_path_factory):
    sample_rows()  # skips when the fixture is absent
    out = tmp_path_factory.mktemp("cli_prepared")
    result = runner.invoke(
        app, ["prepare", "--input", str(SAMPLE), "--dataset", "auto", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out / "train.parquet"


def test_prepare_prints_summary(tmp_path):
    result = runner.invoke(
        app,
        [
            "prepare",
            "-i",
            str(SAMPLE),
            "-d",
            "auto",
            "-o",
            str(tmp_path),
            "--split",
            "val",
            "--limit",
            "3",
            "--persona-dropout",
            "0.2,0.1",
            "--seed",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "val_dropout: read 12, written 3, dropped 9 (limit: 9)" in result.output
    assert "limit: beyond the row limit" in result.output
    assert len(load_prepared(tmp_path / "val_dropout.parquet")) == 3


@pytest.mark.parametrize("value", ["0.3", "a,b", "0.3,1.5"])
def test_prepare_rejects_bad_dropout(tmp_path, value):
    result = runner.invoke(
        app,
        [
            "prepare",
            "-i",
            str(SAMPLE),
            "-d",
            "auto",
            "-o",
            str(tmp_path),
            "--persona-dropout",
            value,
        ],
    )
    assert result.exit_code == 2
    assert "--persona-dropout" in result.output


@pytest.mark.parametrize(("row", "state"), [(3, "response"), (3, "stance"), (6, "response")])
def test_show_prints_exactly_the_model_text(prepared_file, row, state):
    result = runner.invoke(app, ["show", str(prepared_file), "--row", str(row), "--state", state])
    assert result.exit_code == 0, result.output
    example = load_prepared(prepared_file)[row]
    expected = render_chat(
        build_messages(example, state, state_set="sebvgcr"),
        thinking=is_thinking(state, thinking=True),
    )
    assert result.output == expected
    ending = "<think>\n" if state == "response" else "<think>\n\n</think>\n\n"
    assert result.output.endswith("<|im_start|>user\n<name>HUMAN</name>\n" + ending)


@pytest.mark.parametrize(
    ("mode", "ending"),
    [
        ("humanlm", "<think>\n"),  # hetero thinking: the response thinks
        ("grpo", "<think>\n\n</think>\n\n"),  # no thinking: an empty block is pre-filled
        ("grpo-think", "<think>\n"),
        ("sft", "<think>\n\n</think>\n\n"),
        ("sft-think", "<think>\n"),
    ],
)
def test_show_renders_every_training_mode(prepared_file, mode, ending):
    from humanlm.states import MODES
    from humanlm.states.examples import render_prompt

    result = runner.invoke(app, ["show", str(prepared_file), "--row", "3", "--mode", mode])
    assert result.exit_code == 0, result.output
    spec = MODES[mode]
    example = load_prepared(prepared_file)[3]
    expected = render_prompt(example, "response", state_set=spec.state_set, thinking=spec.thinking)
    assert result.output == expected  # the very text training renders for this mode
    assert result.output.endswith("<name>HUMAN</name>\n" + ending)
    tagged = "<response>" in result.output
    assert tagged == (mode != "sft")  # SFT trains on untagged replies


def test_show_with_a_tokenizer_matches_the_bundled_template(prepared_file, tmp_path):
    import tokenizers
    import transformers

    model = tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizers.Tokenizer(model),
        unk_token="[UNK]",
        chat_template=load_chat_template(),
    )
    tok.save_pretrained(tmp_path / "tok")
    args = ["show", str(prepared_file), "--row", "2", "--state", "response"]
    bundled = runner.invoke(app, args)
    through = runner.invoke(app, [*args, "--tokenizer", str(tmp_path / "tok")])
    assert through.exit_code == 0, through.output
    assert through.output == bundled.output


@pytest.mark.parametrize(
    ("args", "error", "fragment"),
    [
        (["--row", "99"], DataError, "row 99 does not exist (12 rows)"),
        (["--state", "mood"], ConfigError, "unknown state 'mood'"),
        (["--state", "stance", "--mode", "grpo"], ConfigError, "not trained in mode 'grpo'"),
        (["--mode", "xyz"], ConfigError, "mode 'xyz' is not one of"),
    ],
)
def test_show_errors(prepared_file, args, error, fragment):
    result = runner.invoke(app, ["show", str(prepared_file), *args])
    assert isinstance(result.exception, error)
    assert fragment in str(result.exception)


def test_console_script_reports_bad_rows_with_exit_code_2(tmp_path):
    rows = sample_rows()[:3]
    rows[1]["persona"] = "{not json"
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "humanlm.cli.main",
            "data",
            "prepare",
            "--input",
            str(path),
            "--dataset",
            "auto",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert f"error: file {path}, row 1, field 'persona'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "train.parquet").exists()


def test_help_shows_examples():
    for command in ("prepare", "show"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
        assert f"humanlm data {command} " in result.output
