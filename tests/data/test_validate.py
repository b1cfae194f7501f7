"""`validate_source`: every problem of every row, notes that do not block, clean built data."""

from __future__ import annotations

import json

import pytest

from humanlm.data.validate import validate_source
from humanlm.errors import DataError
from tests.data.samples import SAMPLE, sample_rows, write_jsonl
from tests.ingest.test_dataset import build, forum_items


def good_row(n: int = 0) -> dict:
    return {
        "prompt": [{"role": "op", "content": "post", "metadata": "{}"}],
        "completion": f"reply {n}",
        "user_id": "ann",
        "post_id": f"p{n}",
        "turn_id": 1,
        "timestamp": 1_700_000_000 + n,
        "metadata": "{}",
        "persona": "",
    }


def test_built_folder_is_clean(tmp_path):
    build(tmp_path, forum_items(threads=10))
    report = validate_source(tmp_path / "out")
    assert report.ok and report.rows == sum(report.rows_per_split.values()) > 0
    assert report.describe().endswith("no problems")


def test_every_problem_is_collected(tmp_path):
    rows = [good_row(n) for n in range(5)]
    rows[1]["completion"] = "   "  # empty reply
    rows[1]["persona"] = "{oops"  # and a broken persona in the same row
    rows[1]["timestamp"] = "soon"  # and a bad timestamp
    rows[3]["prompt"] = [{"role": "", "content": "x"}]  # empty role
    rows[4]["turn_id"] = 7  # does not match the one message
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    report = validate_source(path, dataset="generic")
    assert not report.ok and report.bad_rows == 3
    found = [(p.row, p.field) for p in report.problems]
    assert found == [
        (1, "completion"),
        (1, "persona"),
        (1, "timestamp"),
        (3, "prompt[0].role"),
        (4, "turn_id"),
    ]
    assert str(report.problems[0]) == "train row 1 field 'completion': completion is empty"
    text = report.describe(max_problems=2)
    assert "... and 3 more" in text and text.endswith("5 problems in 3 rows")
    assert "problems by field: completion 1, persona 1, timestamp 1, prompt 1, turn_id 1" in text


def test_notes_do_not_count_as_problems(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [good_row(0), good_row(1)])
    test_row = {**good_row(1), "user_id": "bob", "completion": "later"}
    test_row["persona"] = json.dumps({"demographics": {}, "interests": ["chess"]})
    write_jsonl(tmp_path / "test.jsonl", [test_row])
    report = validate_source(tmp_path)
    assert report.ok
    assert report.notes == [
        "1 test threads also appear in train (expected only for splits by turn)",
        "1 test users have no train rows",
        "1 rows have a structured persona with fewer than 10 items (prepare drops them)",
    ]


def test_hub_format_sample_rows_validate():
    sample_rows()  # skips when the real-data fixture is absent
    report = validate_source(SAMPLE)
    assert report.ok, report.describe()
    assert report.rows == 12


def test_a_missing_source_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        validate_source(tmp_path / "nothing")


def test_oversize_personas_are_problems_via_cli(tmp_path):
    # issue 24: 18.7 MB personas were called fine.
    from typer.testing import CliRunner

    from humanlm.cli.data import app

    structured = {"demographics": {"gender": "NA"}, "interests": ["x" * 520_000]}
    rows = [good_row(n) for n in range(4)]
    rows[1]["persona"] = json.dumps(structured)  # one item far over its limit
    rows[2]["persona"] = "p" * 22_000  # plain text, over the limit in all
    rows[3]["persona"] = json.dumps({"demographics": {"age group": float("nan")}})
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, rows)
    done = CliRunner().invoke(app, ["validate", str(path)])
    assert done.exit_code == 1, done.output
    assert (
        "row 1 field 'persona.interests[0]': the item has 520,000 characters; the limit is 400"
        in done.output
    )
    assert "row 2 field 'persona': the persona has 22,000 characters; the limit is 16,000" in (
        done.output
    )
    assert "row 3 field 'persona.demographics.age group': nan is not a value" in done.output
    assert "3 problems in 3 rows" in done.output
    prepared = CliRunner().invoke(
        app, ["prepare", "-i", str(path), "-d", "generic", "-o", str(tmp_path / "out")]
    )
    assert prepared.exit_code != 0 and not (tmp_path / "out" / "train.parquet").exists()
