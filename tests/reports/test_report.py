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
from humanlm.reports.report import write_report
from humanlm.testing import Reply, ScriptedServer
from humanlm.testing.judge_replies import judge_reply_fn, overlap_score

from .conftest import MIXED_DEMO

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
    assert names == [
        "report_detectability.png", "report_diversity.png", "report_lengths.png",
        "report_state_alignment.png", "report_training_1.png", "report_verdicts.png",
    ]  # fmt: skip
    for image in files.images:
        assert image.read_bytes().startswith(b"\x89PNG")
        assert f"]({image.name})" in md
    assert "## Samples: echo" in md and "worst ·" in md and "best ·" in md


def test_html_is_self_contained(runs, tmp_path):
    html = write_report(runs, out=tmp_path / "report.html").html.read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 6
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


# --- population metrics, stability, judge agreement, robustness ---------------------------


def _same_reply(request):
    return Reply(content="plan</think>\n\n<response>I think you should talk to them.</response>")


@pytest.fixture(scope="module")
def population_runs(tmp_path_factory) -> Path:
    """Under one folder: two systems judged by two judges, a --seeds run and a dropout split.

    Built once for the module: the tests below only read it.
    """
    from humanlm.eval import EvalConfig
    from humanlm.eval.rescore import rescore_run

    from .conftest import echo_reply

    tmp = tmp_path_factory.mktemp("population")
    data = tmp / "data"
    data.mkdir()
    demo = (MIXED_DEMO / "test.jsonl").read_text()  # reddit and wildchat rows
    (data / "test.jsonl").write_text(demo)
    rows = [json.loads(line) for line in demo.splitlines()]
    for row in rows:
        row["persona"] = ""  # every persona field dropped
    (data / "test_dropout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    root = tmp / "runs"
    with (
        ScriptedServer(reply_fn=echo_reply) as echo_sim,
        ScriptedServer(reply_fn=_same_reply) as same_sim,
        ScriptedServer(reply_fn=judge_reply_fn()) as judge,
        ScriptedServer(reply_fn=judge_reply_fn(lambda c, r: overlap_score(c, r) / 2)) as half,
    ):

        def cfg(sim, name, **settings):
            return EvalConfig(
                model=f"openai:sim@{sim.base_url}", data=str(data), name=name, aspects=False,
                judge=f"openai:judge@{judge.base_url}", embedding=False, progress=False,
                timeout_s=3.0, max_retries=1, **settings,
            )  # fmt: skip

        echo = cfg(echo_sim, "echo", out=str(root / "echo"))
        same = cfg(same_sim, "same", seeds=2, out=str(root / "same"))
        run_eval(echo)
        run_eval(cfg(echo_sim, "echo", split="test_dropout", out=str(root / "echo_drop")))
        run_eval(same)
        for done in (echo, same):
            rescore_run(done.out, judge=f"openai:half@{half.base_url}")
    return root


def test_report_shows_population_sections(population_runs, tmp_path):
    files = write_report([population_runs], out=tmp_path / "pop" / "report.html")
    md = files.markdown.read_text()
    for title in ("## Diversity: simulated / real (ratio)", "## Distribution: reply length and "
                  "verdicts", "## Detectability", "## Stability over seeds", "## Judge agreement",
                  "## Robustness: persona dropout"):  # fmt: skip
        assert title in md
    assert "MATTR window 50" in md and "HD-D with draws of 42" in md
    # Runs of one name are told apart by what differs between them: split, judge.
    same = r"\| same \(openai:judge\) · reddit \| "
    assert re.search(same + r"0\.\d{3} / 0\.\d{3} \(0\.\d\d\)", md)
    assert re.search(same + r"[\d.]+ / [\d.]+ \| [\d.]+ \| NTA 0/\d+ ", md)
    assert "| echo (test_dropout, openai:judge) · wildchat |" in md
    # The --seeds run's seed-1 folder is part of it, not a run of its own.
    assert "same (seed" not in md and md.count("- **same**") == 2  # its run and its rescore
    assert "| same (openai:judge) | detectability.accuracy |" in md
    names = {p.name for p in files.images}
    assert {"report_diversity.png", "report_detectability.png", "report_lengths.png",
            "report_verdicts.png"} <= names  # fmt: skip


def test_judge_agreement_and_system_ranking(population_runs):
    from humanlm.reports.population_report import judge_agreement
    from humanlm.reports.report import load_runs

    runs, _ = load_runs([population_runs])
    found = {(a["run"], a["split"]): a for a in judge_agreement(runs)}
    echo = found[("echo", "test")]
    assert echo["judges"][0].startswith("openai:half@") and echo["examples"] > 3
    assert echo["spearman"] > 0.9 and echo["kendall"] > 0.8  # half the score: same order
    assert echo["same_ranking"] == (True, 2)
    assert ("echo", "test_dropout") not in found  # judged by one judge only


def test_judge_agreement_detects_a_reversed_ranking(tmp_path):
    from humanlm.reports.population_report import judge_agreement
    from humanlm.reports.report import EvalRun

    def run(label, judge, scores):
        samples = [{"example_id": str(i), "scores": {"response_alignment": s}}
                   for i, s in enumerate(scores)]  # fmt: skip
        mean = 100 * sum(scores) / len(scores)
        results = {"name": label, "dataset": "auto", "split": "test", "judge": judge,
                   "metrics": {"response_alignment": {"score": mean}}}  # fmt: skip
        return EvalRun(tmp_path, results, samples)

    runs = [run("a", "j1", [0.1, 0.2, 0.3, 0.4]), run("a", "j2", [0.9, 0.8, 0.7, 0.6]),
            run("b", "j1", [0.5, 0.6, 0.7, 0.8]), run("b", "j2", [0.1, 0.2, 0.3, 0.1])]  # fmt: skip
    found = {a["run"]: a for a in judge_agreement(runs)}
    assert found["a"]["spearman"] == pytest.approx(-1.0)
    assert found["a"]["kendall"] == pytest.approx(-1.0)
    assert found["a"]["same_ranking"] == (False, 2)  # j1: b over a; j2: a over b


def test_robustness_pairs_test_and_test_dropout(population_runs):
    from humanlm.reports.population_report import robustness_rows
    from humanlm.reports.report import load_runs

    runs, _ = load_runs([population_runs])
    rows = {(r["run"], r["metric"]): r for r in robustness_rows(runs)}
    assert all(r["judge"].startswith("openai:judge@") for r in rows.values())
    ra = rows[("echo", "response_alignment")]
    by_split = {
        r.results["split"]: r.results["metrics"]["response_alignment"]["score"]
        for r in runs
        if r.label == "echo" and r.results["judge"].startswith("openai:judge@")
    }
    assert ra["test"] == by_split["test"] and ra["test_dropout"] == by_split["test_dropout"]
    assert ra["drop"] == pytest.approx(by_split["test"] - by_split["test_dropout"])
    assert ("echo", "detectability.accuracy") in rows
    assert not any(run == "same" for run, _ in rows)  # no dropout run of it


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs /usr/bin/chromium (CI: apt-get install -y chromium)",
)
def test_population_sections_render_in_headless_chromium(population_runs, tmp_path):
    files = write_report([population_runs], out=tmp_path / "report.html")
    profile = tmp_path / "chromium-profile"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--dump-dom",
        files.html.resolve().as_uri(),
    ]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, timeout=120, check=False, text=True).stdout
    shutil.rmtree(profile, ignore_errors=True)
    for title in ("Diversity: simulated / real (ratio)", "Detectability", "Judge agreement",
                  "Robustness: persona dropout", "Stability over seeds"):  # fmt: skip
        assert f"<h2>{title}</h2>" in dom
    assert dom.count('<img src="data:image/png;base64,') == len(files.images)
    assert "AITA verdict shares" in dom and "Reply length: simulated and real" in dom


def test_runs_with_the_same_label_are_all_kept(make_cfg, judge_server, tmp_path):
    from humanlm.reports.report import load_runs
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
    from humanlm.reports.report import EvalRun, _main_table

    empty = EvalRun(Path("x"), {"name": "empty", "by_data_source": {}}, [])
    table = _main_table([empty])
    assert table.rows[0][0] == "empty" and "nothing scored" in " ".join(table.rows[0])
