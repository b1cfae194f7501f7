"""``write_report``: tables, paper numbers, charts, samples; HTML self-contained and renderable."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from humanlm.errors import DataError
from humanlm.eval import run_eval
from humanlm.eval.report import write_report

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def runs(make_cfg, tmp_path) -> list[Path]:
    """Two evaluations: a plain one and one inside a training run with a metrics.jsonl."""
    first = make_cfg(limit=6, name="echo", out=str(tmp_path / "eval_a"))
    train_dir = tmp_path / "train_run"
    second = make_cfg(limit=6, name="echo-no-think", thinking=False, out=str(train_dir / "eval"))
    run_eval(first)
    run_eval(second)
    rows = [
        {
            "phase": "grpo",
            "step": s,
            "loss": 1.0 / s,
            "reward": 0.1 * s,
            "state_reward/stance": 0.05 * s,
        }
        for s in range(1, 6)
    ]
    (train_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return [Path(first.out), train_dir]


def test_report_has_tables_paper_rows_and_charts(runs, tmp_path):
    files = write_report(runs, out=tmp_path / "out" / "report.html")
    md = files.markdown.read_text()
    assert files.markdown.name == "report.md"
    assert "| run | Opinion (reddit) | Chat (wildchat) | Avg |" in md
    assert re.search(r"\| echo \| \d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\] \|", md)
    assert "| paper: HumanLM | 25.60 | 6.08 |" in md  # reddit = Opinion, wildchat = Chat
    assert "echo-no-think" in md and "State alignment per state" in md
    names = sorted(p.name for p in files.images)
    assert names == ["report_state_alignment.png", "report_training_1.png"]
    for image in files.images:
        assert image.read_bytes().startswith(b"\x89PNG")
        assert f"]({image.name})" in md
    assert "## Samples: echo" in md and "worst ·" in md and "best ·" in md


def test_html_is_self_contained(runs, tmp_path):
    html = write_report(runs, out=tmp_path / "report.html").html.read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 2
    assert not re.search(r'(src|href)="https?://', html)
    assert "<script" not in html and "<link" not in html
    assert "paper: HumanLM" in html and "Opinion (reddit)" in html


def test_sample_text_is_escaped(runs, tmp_path):
    path = runs[0] / "samples.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record["response"] = "<script>alert(1)</script>"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    html = write_report(runs, out=tmp_path / "report.html").html.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html


def test_folder_without_runs_is_an_error(tmp_path):
    with pytest.raises(DataError, match="results.json"):
        write_report([tmp_path], out=tmp_path / "report.html")


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs /usr/bin/chromium (CI: apt-get install -y chromium)",
)
def test_html_renders_in_headless_chromium(runs, tmp_path):
    files = write_report(runs, out=tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    profile = tmp_path / "chromium-profile"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={shot}",
        "--window-size=1280,2000", files.html.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    shutil.rmtree(profile, ignore_errors=True)
    assert shot.exists(), "chromium wrote no screenshot"
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    # A rendered page has dark text and coloured bars on white, not one flat colour.
    assert pixels[..., :3].std() > 0.05
    coloured = (abs(pixels[..., 0] - pixels[..., 2]) > 0.3).mean()  # the chart's bars
    assert coloured > 0.001


def test_runs_with_the_same_label_are_all_kept(make_cfg, judge_server, tmp_path):
    from humanlm.eval.report import load_runs
    from humanlm.testing import faults

    run_eval(make_cfg(limit=3, name="same", out=str(tmp_path / "a")))
    healthy = judge_server.reply_fn
    judge_server.reply_fn = lambda request: faults.server_error()
    run_eval(make_cfg(limit=3, name="same", out=str(tmp_path / "b"), max_retries=0))
    judge_server.reply_fn = healthy
    runs, _ = load_runs([tmp_path / "a", tmp_path / "b"])
    assert sorted(r.label for r in runs) == ["same (a)", "same (b)"]
    files = write_report([tmp_path / "a", tmp_path / "b"], out=tmp_path / "report.html")
    text = files.markdown.read_text()
    assert "same (a)" in text and "same (b)" in text
    assert "scored)" in text  # the run the judge failed is shown with nothing scored


def test_a_run_without_sources_is_shown_as_nothing_scored():
    from humanlm.eval.report import EvalRun, _main_table

    empty = EvalRun(Path("x"), {"name": "empty", "by_data_source": {}}, [])
    table = _main_table([empty])
    assert table.rows[0][0] == "empty" and "nothing scored" in " ".join(table.rows[0])
