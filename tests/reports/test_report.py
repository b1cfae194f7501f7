"""``write_report``: tables, paper numbers, charts, samples; HTML self-contained and renderable."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

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
    assert (
        "| run | Opinion (reddit) | Chat (wildchat) | Avg of the columns shown "
        "| Avg as the paper states it |" in md
    )
    assert re.search(r"\| echo \| \d+\.\d\d n=3 \| \d+\.\d\d n=3 \| \d+\.\d\d \| – \|", md)
    assert "| paper: HumanLM | 25.60 | 6.08 | 15.84 | 13.2 |" in md  # Opinion, Chat; the paper's
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
        "--window-size=1280,4000", files.html.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    shutil.rmtree(profile, ignore_errors=True)
    assert shot.exists(), "chromium wrote no screenshot"
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (4000, 1280)
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
                simulator={"timeout_s": 3.0, "max_retries": 1}, **settings,
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
    assert "| echo (test\\_dropout, openai:judge) · wildchat |" in md  # "_" escaped
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
    run_eval(make_cfg(limit=3, name="same", out=str(tmp_path / "b"), simulator={"max_retries": 0}))
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


# --- what the report claims: n, intervals, ties, charts = tables, paper rows, escaping ---------


@pytest.mark.parametrize(
    ("summary", "shown"),
    [
        ({"score": 12.5, "ci_low": 10.0, "ci_high": 15.0, "examples": 40, "scored": 40},
         "12.50 [10.00, 15.00] n=40"),  # enough scored examples: the interval
        ({"score": 12.5, "ci_low": 10.0, "ci_high": 15.0, "examples": 12, "scored": 10},
         "12.50 [10.00, 15.00] n=10"),  # the smallest n with an interval
        ({"score": 12.5, "ci_low": 0.0, "ci_high": 25.0, "examples": 9, "scored": 9},
         "12.50 n=9"),  # one below it: the mean and n only
        ({"score": 50.0, "ci_low": 0.0, "ci_high": 100.0, "examples": 2, "scored": 2},
         "50.00 n=2"),  # issue 25: n=2 carried an interval
        ({"score": None, "ci_low": None, "ci_high": None, "examples": 5, "scored": 0},
         "n/a (0 of 5 scored)"),  # nothing scored
        (None, "–"),  # no such cell
    ],
)  # fmt: skip
def test_a_cell_shows_its_n_and_an_interval_only_where_n_allows(summary, shown):
    from humanlm.reports.cells import MIN_INTERVAL_N, summary_cell

    assert MIN_INTERVAL_N == 10
    assert summary_cell(summary) == shown


def _summary(score: float, n: int) -> dict:
    return {"score": score, "ci_low": score - 1, "ci_high": score + 1, "examples": n, "scored": n}


def _run_on(*sources: str, name: str = "mine") -> Any:
    from humanlm.reports.report import EvalRun

    parts = {s: {"metrics": {"response_alignment": _summary(20.0, 50)}} for s in sources}
    return EvalRun(Path(name), {"name": name, "by_data_source": parts}, [])


def test_paper_rows_keep_the_papers_avg_and_label_a_recomputed_one():
    from humanlm.reports.report import _main_table

    # issue 25: over the columns shown, HumanLM's Avg was recomputed and shown as the paper's
    one = _main_table([_run_on("reddit")])
    assert one.columns == ["run", "Opinion (reddit)", "Avg as the paper states it"]
    rows = {row[0]: row for row in one.rows}
    assert rows["paper: HumanLM"] == ["paper: HumanLM", "25.60", "13.2"]
    assert rows["mine"] == ["mine", "20.00 [19.00, 21.00] n=50", "–"]

    six = _main_table([_run_on("youtube", "amazon", "reddit", "medium", "wildchat", "enron")])
    assert six.columns[-2:] == ["Avg of the columns shown", "Avg as the paper states it"]
    rows = {row[0]: row for row in six.rows}
    assert rows["paper: HumanLM"][-2:] == ["13.17", "13.2"]  # the mean of its six; as published
    assert rows["mine"][-2:] == ["20.00", "–"]


def test_paper_rows_only_for_datasets_the_runs_cover():
    from humanlm.reports.report import _main_table

    generic = _main_table([_run_on("generic")])
    assert generic.columns == ["run", "generic data"]
    assert [row[0] for row in generic.rows] == ["mine"] and "Paper rows" not in generic.note
    mixed = _main_table([_run_on("generic", "reddit")])
    assert mixed.columns == ["run", "Opinion (reddit)", "generic data",
                             "Avg of the columns shown", "Avg as the paper states it"]  # fmt: skip
    paper = {row[0]: row for row in mixed.rows}["paper: SFT"]
    assert paper == ["paper: SFT", "11.30", "–", "–", "6.5"]  # no mean over a missing cell


def test_generic_data_is_labelled_by_what_it_is(make_cfg, tmp_path):
    rows = [json.loads(line) for line in (MIXED_DEMO / "test.jsonl").read_text().splitlines()]
    data = tmp_path / "mine"
    data.mkdir()
    with (data / "test.jsonl").open("w") as file:
        for row in rows:
            row["dataset"] = "generic"  # one's own rows in the schema, of no paper dataset
            file.write(json.dumps(row) + "\n")
    cfg = make_cfg(limit=4, name="mine", data=str(data), out=str(tmp_path / "eval"))
    run_eval(cfg)
    md = write_report([cfg.out], out=tmp_path / "report.html").markdown.read_text()
    # issue 25: the run was "auto/test", with the paper's seven rows beside it
    assert f"- **mine**: generic data, test split of {data}, 4 examples" in md.replace("\\", "")
    assert "auto/test" not in md and "paper:" not in md
    assert "| run | generic data |" in md


def test_all_samples_tied_are_shown_as_ties(make_cfg, judge_server, tmp_path):
    judge_server.reply_fn = judge_reply_fn(lambda candidate, real: 0.5)
    cfg = make_cfg(limit=6, name="flat", aspects=False, out=str(tmp_path / "flat"))
    run_eval(cfg)
    files = write_report([cfg.out], out=tmp_path / "report.html")
    html, md = files.html.read_text(), files.markdown.read_text()
    # issue 25: "Best by response alignment: No scored samples" when all were scored
    assert "No scored samples" not in html and "No scored samples" not in md
    assert "All 6 scored samples tie at 50.0." in html
    assert "- best: All 6 scored samples tie at 50.0." in md
    assert md.count(", tied with 5 other samples") == 3  # the worst three, tied with the rest


def _cells(table: Any) -> dict[str, dict[str, str]]:
    return {row[0]: dict(zip(table.columns, row, strict=True)) for row in table.rows}


def _tables_and_charts(paths: list[Path], out: Path) -> tuple[dict, dict, list]:
    """The report's tables by title (cells by row and column), its charts' data by file."""
    from humanlm.reports.report import _build, _figures, load_runs

    runs, logs = load_runs(paths)
    content = _build(runs, logs, out=out)
    tables = [*content["tables"], content["states_table"], *content["population_tables"]]
    by_title = {t.title: _cells(t) for t in tables if t is not None}
    figures = {f.name.removeprefix("r_"): f.data for f in _figures(runs, logs, stem="r")}
    return by_title, figures, runs


def test_every_chart_draws_the_numbers_its_table_shows(population_runs, runs, tmp_path):
    by_title, figures, loaded = _tables_and_charts([population_runs], tmp_path / "report.html")

    detect = by_title["Detectability"]
    assert set(figures["detectability.png"]) == set(detect)  # one bar (or n/a) per row
    for label, numbers in figures["detectability.png"].items():
        accuracy = numbers["accuracy"]
        shown = detect[label]["accuracy"]
        assert shown.startswith("n/a (") if accuracy is None else shown == f"{accuracy:.2f}"
    for label, ratios in figures["diversity.png"].items():
        for measure, ratio in ratios.items():
            assert by_title["Diversity: simulated / real (ratio)"][label][measure].endswith(
                f"({ratio:.2f})"
            )
    lengths = by_title["Distribution: reply length and verdicts"]
    assert set(figures["lengths.png"]) == set(lengths)
    for label, means in figures["lengths.png"].items():
        shown = f"{means['simulated mean']:.1f} / {means['real mean']:.1f}"
        assert lengths[label]["mean words sim / real"] == shown
    for label, shares in figures["verdicts.png"].items():
        for verdict in ("NTA", "YTA", "none"):
            pair = f"{shares[verdict + ' simulated']:.0f}/{shares[verdict + ' real']:.0f}"
            assert f"{verdict} {pair}" in lengths[label]["verdict % sim/real"]
    with_states, charts, _ = _tables_and_charts(runs, tmp_path / "report.html")
    states = with_states["State alignment per state"]
    assert set(charts["state_alignment.png"]) == set(states)
    for label, scores in charts["state_alignment.png"].items():
        for state, score in scores.items():
            assert states[label][state].startswith(f"{score:.2f} n=")

    # issue 25: the chart was empty (per-source accuracy n/a) while the eval printed the pooled
    # accuracy; the pooled row is in the table and the chart, with the number eval printed.
    echo = next(r for r in loaded if r.label == "echo" and r.results["split"] == "test"
                and r.results["judge"].startswith("openai:judge@"))  # fmt: skip
    printed = echo.results["metrics"]["detectability"]["accuracy"]
    assert printed is not None
    pooled = "echo (test, openai:judge) · all"
    assert detect[pooled]["accuracy"] == f"{printed:.2f}"
    assert figures["detectability.png"][pooled]["accuracy"] == printed


RUN_NAME = "a|b *x* _y_ `z` [l](http://e.x) <i>w</i> &amp; ~~s~~"


def test_run_names_are_escaped_in_markdown_and_html(make_cfg, tmp_path):
    from markdown_it import MarkdownIt

    from humanlm.reports.report import _template

    cfg = make_cfg(limit=3, name=RUN_NAME, aspects=False, out=str(tmp_path / "weird"))
    run_eval(cfg)
    files = write_report([cfg.out], out=tmp_path / "report.html")
    rendered = (
        MarkdownIt("commonmark")
        .enable(["table", "strikethrough"])
        .render(files.markdown.read_text())
    )
    escaped = html.escape(RUN_NAME, quote=False)
    # issue 25: report.md wrote run names as they were
    assert f"<strong>{escaped}</strong>" in rendered  # the run list
    assert f"<td>{escaped}</td>" in rendered  # the tables: one cell, not split at "|"
    assert f"<h2>Samples: {escaped}</h2>" in rendered
    assert "<em>" not in rendered and "<s>" not in rendered  # no emphasis, no strikethrough
    assert "http://e.x" not in re.findall(r'href="([^"]*)"', rendered)  # no link
    assert _template().environment.autoescape is True
    page = files.html.read_text()
    assert f"<b>{html.escape(RUN_NAME)}</b>" in page and "<i>w</i>" not in page
