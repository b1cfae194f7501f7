"""Report sections on populations and comparisons: diversity, distribution, detectability,
stability over seeds, judge agreement, persona-dropout robustness and users never seen
(``humanlm.reports.unseen``).

``humanlm.reports.report`` calls ``population_tables`` and ``population_figures``; each returns
nothing for runs that lack the blocks it draws (older runs, ``--no-population``).

- Judge agreement: runs of one name on one dataset and split under two judges (for example a
  run and its ``--rescore``) are compared over the examples both scored: Spearman's rho and
  Kendall's tau of the per-example response alignment, and, when at least two run names were
  judged by both judges, whether the two judges rank the systems the same.
- Robustness: runs of one name on ``test`` and ``test_dropout`` (personas with fields dropped)
  under one judge are paired; the drop is test minus test_dropout for every metric.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from scipy.stats import kendalltau, spearmanr

from humanlm.eval.stats import METRICS
from humanlm.population.distribution import VERDICTS, reply_length
from humanlm.population.diversity import DIVERSITY_MEASURES, HDD_SAMPLE, MATTR_WINDOW
from humanlm.population.metrics import paired_replies
from humanlm.reports.population_charts import (
    detectability_chart,
    diversity_chart,
    length_chart,
    verdict_chart,
)
from humanlm.reports.unseen import unseen_table

__all__ = [
    "judge_agreement",
    "population_figures",
    "population_tables",
    "robustness_rows",
    "run_names",
]

_MISSING = "–"
_DROPOUT = {"test": "test_dropout"}
_HEADLINES = (
    "distribution.length.distance",
    "distribution.verdict.distance",
    "detectability.accuracy",
    "detectability.turing_distance",
)
# Population numbers compared across runs (robustness) besides the per-example metrics.
_POPULATION_KEYS = (
    ("diversity", "ratio", "distinct_2"),
    ("distribution", "length", "distance"),
    ("distribution", "verdict", "distance"),
    ("detectability", "accuracy"),
)


def _num(value: Any, digits: int = 2) -> str:
    return _MISSING if value is None else f"{value:.{digits}f}"


def _dig(block: Mapping[str, Any] | None, keys: Sequence[str]) -> Any:
    for key in keys:
        if not isinstance(block, Mapping):
            return None
        block = block.get(key)
    return block


def _short(judge: str) -> str:
    return judge.split("@")[0]


def run_names(runs: Sequence[Any]) -> list[str]:
    """A name per run: its label, with the split and judge where runs of that label differ."""
    names = []
    for run in runs:
        same = [r for r in runs if r.label == run.label]
        extra = [
            value(run)
            for value in (
                lambda r: str(r.results.get("split")),
                lambda r: _short(str(r.results.get("judge"))),
            )
            if len({value(r) for r in same}) > 1
        ]
        names.append(f"{run.label} ({', '.join(extra)})" if extra else run.label)
    return names


class _Part(NamedTuple):
    """One row of the population tables: a run on one data source (or all, pooled)."""

    label: str
    metrics: dict[str, Any]
    samples: list[dict[str, Any]]


def _parts(runs: Sequence[Any]) -> list[_Part]:
    """Every run and data source that has population blocks, and the run pooled over its
    sources where it has several (the numbers ``humanlm eval`` prints)."""
    parts = []
    for name, run in zip(run_names(runs), runs, strict=True):
        sources = {
            source: part
            for source, part in (run.results.get("by_data_source") or {}).items()
            if "diversity" in part.get("metrics", {})
        }
        for source, part in sources.items():
            samples = [r for r in run.samples if str(r.get("data_source")) == source]
            parts.append(_Part(f"{name} · {source}", part["metrics"], samples))
        overall = run.results.get("metrics") or {}
        if len(sources) > 1 and "diversity" in overall:
            parts.append(_Part(f"{name} · all", overall, list(run.samples)))
    return parts


def _diversity_table(parts: Sequence[_Part], table: Any) -> Any:
    rows = []
    for label, metrics, _ in parts:
        d = metrics["diversity"]
        cells = [
            f"{_num(d['simulated'][m], 3)} / {_num(d['real'][m], 3)} ({_num(d['ratio'][m])})"
            for m in DIVERSITY_MEASURES
        ]
        rows.append([label, *cells, str(d["simulated"]["replies"])])
    return table(
        "Diversity: simulated / real (ratio)",
        ["run · dataset", *DIVERSITY_MEASURES, "replies"],
        rows,
        f"Corpus level over all replies, lower-cased words. MATTR window {MATTR_WINDOW} tokens; "
        f"HD-D with draws of {HDD_SAMPLE} tokens (MirrorBench); Yule's K grows with repetition "
        "(lower is more diverse). The real replies are those of the same examples.",
    )


def _distribution_table(parts: Sequence[_Part], table: Any) -> Any:
    rows = []
    for label, metrics, _ in parts:
        dist = metrics["distribution"]
        length = dist["length"]
        verdict = dist.get("verdict")
        shares = _MISSING
        if verdict:
            shares = " ".join(
                f"{v} {100 * verdict['simulated'][v]:.0f}/{100 * verdict['real'][v]:.0f}"
                for v in VERDICTS
            )
        rows.append(
            [
                label,
                f"{_num(length['simulated']['mean'], 1)} / {_num(length['real']['mean'], 1)}",
                _num(length["distance"]),
                shares,
                _num(verdict["distance"], 3) if verdict else _MISSING,
            ]
        )
    return table(
        "Distribution: reply length and verdicts",
        [
            "run · dataset",
            "mean words sim / real",
            "length W1 (words)",
            "verdict % sim/real",
            "verdict JS distance",
        ],  # fmt: skip
        rows,
        "Length: Wasserstein-1 distance between the length distributions, in words. Verdicts "
        "(reddit): the first of NTA, YTA, ESH, NAH, INFO in a reply (YWBTA counts as YTA, "
        "YWNBTA as NTA; NAH and INFO in capitals only), else none; Jensen-Shannon distance "
        "base 2 (0: same shares, 1: disjoint).",
    )


def _detect_table(parts: Sequence[_Part], table: Any) -> Any:
    rows = []
    for label, metrics, _ in parts:
        d = metrics["detectability"]
        llm = d.get("judge")
        shown = _MISSING
        if llm:
            shown = (f"{_num(llm['accuracy'])} ({llm['pairs']} pairs, {llm['unscored']} "
                     f"unscored; {_short(llm['judge'])})")  # fmt: skip
        accuracy = _num(d.get("accuracy"))
        if d.get("accuracy") is None and d.get("reason"):
            accuracy = f"n/a ({d['reason']})"
        rows.append(
            [
                label,
                accuracy,
                _num(d.get("turing_distance")),
                _num(d.get("pair_accuracy")),
                f"{d.get('pairs', '')} ({d.get('contexts', _MISSING)})",
                str(d.get("method", "")),
                shown,
            ]
        )
    return table(
        "Detectability",
        [
            "run · dataset",
            "accuracy",
            "turing distance",
            "pair accuracy",
            "pairs (contexts)",
            "method",
            "LLM judge accuracy",
        ],  # fmt: skip
        rows,
        "A classifier tells real from simulated replies, cross-validated with folds grouped by "
        "context (the post; no context in training and testing). Accuracy x100: 50 is chance; turing "
        "distance = |accuracy - 50| (0: indistinguishable, 50: always told apart). LLM judge "
        "(--detect-judge): shown the context and both replies in random order, it picks the "
        "human; answers naming neither are unscored.",
    )


def _is_headline(metric: str) -> bool:
    return metric in METRICS or metric.startswith("diversity.ratio.") or metric in _HEADLINES


def _stability_table(runs: Sequence[Any], table: Any) -> Any | None:
    rows = []
    for label, run in zip(run_names(runs), runs, strict=True):
        stability = run.results.get("stability")
        if not stability:
            continue
        for name, s in stability["metrics"].items():
            if not _is_headline(name):
                continue
            se = _MISSING if s["se"] is None else f"{s['se']:.3f}"
            rows.append([label, name, f"{s['mean']:.3f}", se, str(s["runs"])])
    if not rows:
        return None
    return table(
        "Stability over seeds",
        ["run", "metric", "mean", "standard error", "seeds"],
        rows,
        "Every example sampled once per seed; standard error = sample sd / sqrt(seeds). "
        "results.json (stability.metrics) holds every other measure too.",
    )


def _example_scores(run: Any) -> dict[str, float]:
    return {
        str(r["example_id"]): float(r["scores"]["response_alignment"])
        for r in run.samples
        if (r.get("scores") or {}).get("response_alignment") is not None
    }


def _overall_score(run: Any) -> float | None:
    return _dig(run.results.get("metrics"), ("response_alignment", "score"))


def judge_agreement(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """Agreement of two judges on runs of one name, dataset and split (see module docstring)."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in runs:
        key = (run.label, str(run.results.get("dataset")), str(run.results.get("split")))
        groups.setdefault(key, {})[str(run.results.get("judge"))] = run  # later run wins
    found = []
    for (label, dataset, split), by_judge in groups.items():
        for a, b in itertools.combinations(sorted(by_judge), 2):
            first, second = _example_scores(by_judge[a]), _example_scores(by_judge[b])
            shared = sorted(first.keys() & second.keys())
            x, y = [first[k] for k in shared], [second[k] for k in shared]
            rho = tau = None
            if len(shared) >= 3 and len(set(x)) > 1 and len(set(y)) > 1:
                rho, tau = float(spearmanr(x, y).statistic), float(kendalltau(x, y).statistic)
            found.append(
                {"run": label, "dataset": dataset, "split": split, "judges": (a, b),
                 "examples": len(shared), "spearman": rho, "kendall": tau,
                 "same_ranking": _same_ranking(groups, dataset, split, a, b)}
            )  # fmt: skip
    return found


def _same_ranking(
    groups: Mapping[tuple[str, str, str], Mapping[str, Any]],
    dataset: str,
    split: str,
    a: str,
    b: str,
) -> tuple[bool, int] | None:
    """Whether judges ``a`` and ``b`` order the run names the same (``None``: < 2 names)."""
    scored = []
    for (label, ds, sp), by_judge in groups.items():
        if (ds, sp) == (dataset, split) and a in by_judge and b in by_judge:
            sa, sb = _overall_score(by_judge[a]), _overall_score(by_judge[b])
            if sa is not None and sb is not None:
                scored.append((label, sa, sb))
    if len(scored) < 2:
        return None
    order_a = [s[0] for s in sorted(scored, key=lambda s: -s[1])]
    order_b = [s[0] for s in sorted(scored, key=lambda s: -s[2])]
    return order_a == order_b, len(scored)


def _agreement_table(runs: Sequence[Any], table: Any) -> Any | None:
    rows = []
    for item in judge_agreement(runs):
        ranking = item["same_ranking"]
        shown = _MISSING if ranking is None else f"{'yes' if ranking[0] else 'no'} ({ranking[1]})"
        rows.append(
            [item["run"], f"{item['dataset']}/{item['split']}",
             " vs ".join(map(_short, item["judges"])),
             str(item["examples"]), _num(item["spearman"], 3), _num(item["kendall"], 3), shown]
        )  # fmt: skip
    if not rows:
        return None
    return table(
        "Judge agreement",
        ["run", "data", "judges", "examples", "Spearman", "Kendall", "same system ranking"],
        rows,
        "Per-example response alignment of one run's replies under two judges (e.g. a run and "
        "its --rescore), over the examples both scored. Same system ranking: whether the two "
        "judges order all run names judged by both the same way (number of runs).",
    )


def _run_numbers(run: Any) -> dict[str, float | None]:
    metrics = run.results.get("metrics") or {}
    numbers = {m: _dig(metrics, (m, "score")) for m in METRICS if m in metrics}
    for keys in _POPULATION_KEYS:
        if _dig(metrics, keys[:1]) is not None:
            numbers[".".join(keys)] = _dig(metrics, keys)
    return numbers


def robustness_rows(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """Pairs of runs of one name and judge on ``test`` and ``test_dropout``, with the drop."""
    latest: dict[tuple[str, str, str, str], Any] = {}
    for run in runs:  # sorted by creation time, so a later run of the same key wins
        results = run.results
        key = (run.label, str(results.get("dataset")), str(results.get("judge")),
               str(results.get("split")))  # fmt: skip
        latest[key] = run
    rows = []
    for (label, dataset, judge, split), run in latest.items():
        dropped = latest.get((label, dataset, judge, _DROPOUT.get(split, "")))
        if dropped is None:
            continue
        full, less = _run_numbers(run), _run_numbers(dropped)
        for metric, value in full.items():
            other = less.get(metric)
            drop = None if value is None or other is None else value - other
            rows.append(
                {"run": label, "dataset": dataset, "judge": judge, "metric": metric,
                 "test": value, "test_dropout": other, "drop": drop}
            )  # fmt: skip
    return rows


def _robustness_table(runs: Sequence[Any], table: Any) -> Any | None:
    rows = [
        [r["run"], r["dataset"], _short(r["judge"]), r["metric"], _num(r["test"], 3),
         _num(r["test_dropout"], 3), _num(r["drop"], 3)]
        for r in robustness_rows(runs)
    ]  # fmt: skip
    if not rows:
        return None
    return table(
        "Robustness: persona dropout",
        ["run", "dataset", "judge", "metric", "test", "test_dropout", "drop"],
        rows,
        "The same model on test and on test_dropout (persona fields dropped); drop = test - "
        "test_dropout. For distances a negative drop means the dropout run is further away.",
    )


def population_tables(runs: Sequence[Any], *, table: Any) -> list[Any]:
    """The report's population and comparison tables (``table``: the report's table class)."""
    parts = _parts(runs)
    tables = []
    if parts:
        tables += [_diversity_table(parts, table), _distribution_table(parts, table),
                   _detect_table(parts, table)]  # fmt: skip
    for build in (_stability_table, _agreement_table, _robustness_table, unseen_table):
        made = build(runs, table)
        if made is not None:
            tables.append(made)
    return tables


def population_figures(runs: Sequence[Any], *, stem: str, figure: Any) -> list[Any]:
    """Charts of the population metrics (``figure``: the report's figure class).

    Each chart draws the rows of its table (the same labels and numbers), which it keeps as
    the figure's ``data``.
    """
    parts = _parts(runs)
    if not parts:
        return []
    ratios = {p.label: dict(p.metrics["diversity"]["ratio"]) for p in parts}
    detect = {p.label: _detect_numbers(p.metrics["detectability"]) for p in parts}
    figures = [
        figure(f"{stem}_diversity.png", "Diversity: simulated / real per measure",
               diversity_chart(list(ratios.items())), ratios),
        figure(f"{stem}_detectability.png", "Detectability: accuracy of the detectors",
               detectability_chart(list(detect.items())), detect),
    ]  # fmt: skip
    lengths, means = [], {}
    for part in parts:
        simulated, real, _ = paired_replies(part.samples)
        if simulated:
            sim, real_words = [reply_length(t) for t in simulated], [reply_length(t) for t in real]
            lengths.append((part.label, sim, real_words))
            means[part.label] = {"simulated mean": _mean(sim), "real mean": _mean(real_words)}
    if lengths:
        png = length_chart(lengths)
        figures.append(
            figure(f"{stem}_lengths.png", "Reply length: simulated and real", png, means)
        )
    verdicts = [(p.label, p.metrics["distribution"]["verdict"]) for p in parts
                if "verdict" in p.metrics["distribution"]]  # fmt: skip
    if verdicts:
        png = verdict_chart(verdicts, VERDICTS)
        shares = {
            label: {f"{v} {side}": 100 * block[side][v] for side in ("simulated", "real")
                    for v in VERDICTS}
            for label, block in verdicts
        }  # fmt: skip
        figures.append(figure(f"{stem}_verdicts.png", "AITA verdict shares", png, shares))
    return figures


def _detect_numbers(block: Mapping[str, Any]) -> dict[str, float | None]:
    """The detectability table's accuracies: the classifier's and, if asked, the LLM judge's."""
    numbers = {"accuracy": block.get("accuracy")}
    if block.get("judge"):
        numbers["LLM judge accuracy"] = block["judge"].get("accuracy")
    return numbers


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
