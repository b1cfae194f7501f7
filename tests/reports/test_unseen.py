"""Users never seen: ``data prepare --holdout-users`` -> eval on test and test_unseen -> report."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from humanlm.data.prepare import load_prepared, run_prepare
from humanlm.data.resolve import demo_data_dir
from humanlm.eval import run_eval
from humanlm.reports.report import EvalRun, Table, load_runs, write_report
from humanlm.reports.unseen import drop_interval, unseen_rows, unseen_table


@pytest.mark.parametrize(
    ("seen", "unseen", "expected"),
    [
        ([0.5] * 4, [0.5] * 3, (0.0, 0.0)),  # all equal: no spread
        ([1.0, 1.0], [0.0], (1.0, 1.0)),  # constant sides: the difference itself
        ([0.2, 0.4], [0.6, 0.6, 0.6], (-0.4, -0.2)),  # unseen better: a negative drop
    ],
)
def test_drop_interval_bounds(seen, unseen, expected):
    assert drop_interval(seen, unseen) == pytest.approx(expected)


def test_drop_interval_is_seeded_and_holds_the_difference():
    rng = np.random.default_rng(3)
    seen, unseen = rng.uniform(0.4, 1.0, 200), rng.uniform(0.0, 0.6, 150)
    low, high = drop_interval(seen, unseen, seed=5)
    assert low < seen.mean() - unseen.mean() < high and high - low < 0.2
    assert drop_interval(seen, unseen, seed=5) == (low, high)
    assert drop_interval(seen, unseen, seed=6) != (low, high)
    with pytest.raises(ValueError, match="each side"):
        drop_interval(seen, [])


def _run(label: str, split: str, scores: list[float | None], judge: str = "j@x") -> EvalRun:
    samples = [{"example_id": f"{split}-{i}", "scores": {"response_alignment": s}}
               for i, s in enumerate(scores)]  # fmt: skip
    scored = [s for s in scores if s is not None]
    summary = {"score": 100 * sum(scored) / len(scored), "ci_low": 0.0, "ci_high": 100.0,
               "examples": len(scores), "scored": len(scored)}  # fmt: skip
    results = {"name": label, "dataset": "reddit", "split": split, "judge": judge,
               "metrics": {"response_alignment": summary}, "bootstrap": {"resamples": 500,
               "seed": 1}}  # fmt: skip
    return EvalRun(Path(label), results, samples)


def test_unseen_rows_pair_test_and_test_unseen_of_one_name_and_judge():
    seen = _run("a", "test", [0.8, 0.6, None, 0.7])
    unseen = _run("a", "test_unseen", [0.3, 0.5])
    others = [_run("a", "test_unseen", [0.9], judge="other@y"), _run("b", "test", [0.5])]
    (row,) = unseen_rows([seen, unseen, *others])  # b has no unseen run; other judge: no pair
    assert (row["run"], row["judge"], row["metric"]) == ("a", "j@x", "response_alignment")
    assert row["seen"] is seen.results["metrics"]["response_alignment"]
    assert row["drop"] == pytest.approx(70.0 - 40.0)
    low, high = drop_interval(
        [0.8, 0.6, 0.7], [0.3, 0.5], resamples=500, seed=1
    )  # the unscored one left out
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((100 * low, 100 * high))
    table = unseen_table([seen, unseen], Table)
    # Three and two scored examples: no interval, only the drop (as every cell below n=10).
    assert table.rows == [["a", "reddit", "j", "response_alignment", "70.00 n=3", "40.00 n=2",
                           "30.00"]]  # fmt: skip
    assert unseen_table([seen], Table) is None


@pytest.fixture
def held_out(tmp_path) -> Path:
    """The bundled demo data prepared with 3 of its 8 users held out."""
    out = tmp_path / "data"
    summary = run_prepare(source=demo_data_dir(), dataset="auto", out_dir=out, holdout_users=3)
    assert summary.held_out == 3
    return out


def test_report_shows_seen_against_unseen_users(held_out, make_cfg, tmp_path):
    runs_dir = tmp_path / "runs"
    for split in ("test", "test_unseen"):
        cfg = make_cfg(data=str(held_out), split=split, limit=14, name="echo", population=False,
                       out=str(runs_dir / split))  # fmt: skip
        run_eval(cfg)
    runs, _ = load_runs([runs_dir])
    by_split = {r.results["split"]: r for r in runs}
    users = {
        name: {r["example_id"]: r["user_id"] for r in load_prepared(held_out / f"{name}.parquet")}
        for name in ("train", "val", "test", "test_unseen")
    }
    evaluated = {users["test_unseen"][s["example_id"]] for s in by_split["test_unseen"].samples}
    assert len(by_split["test_unseen"].samples) == 14 and len(evaluated) >= 1
    for name in ("train", "val", "test"):
        assert not evaluated & set(users[name].values())  # never seen in training, nor in test

    found = {r["metric"]: r for r in unseen_rows(runs)}
    assert {"response_alignment", "state_alignment", "valid_format"} <= set(found)
    ra = found["response_alignment"]
    seen_score = by_split["test"].results["metrics"]["response_alignment"]["score"]
    unseen_score = by_split["test_unseen"].results["metrics"]["response_alignment"]["score"]
    assert ra["drop"] == pytest.approx(seen_score - unseen_score)
    assert ra["ci_low"] <= ra["drop"] <= ra["ci_high"]

    files = write_report([runs_dir], out=tmp_path / "report" / "report.html")
    md = files.markdown.read_text()
    assert "## Users never seen: test vs test_unseen" in md
    assert "| echo | auto | openai:judge | response\\_alignment | " in md
    # Both sides scored 14 examples: every cell carries its interval, the drop too.
    row = next(r for r in unseen_table(runs, Table).rows if r[3] == "response_alignment")
    number = r"-?\d+\.\d\d"
    interval = rf"{number} \[{number}, {number}\]"
    assert [bool(re.fullmatch(rf"{interval} n=14", cell)) for cell in row[4:6]] == [True, True]
    assert re.fullmatch(interval, row[6]), row
    assert "Users never seen: test vs test_unseen" in files.html.read_text()
