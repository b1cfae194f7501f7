"""Evaluation: score any user simulator on Humanual with the paper's protocol, and report it.

- ``run_eval(EvalConfig(...))`` -> ``EvalResult``: the ``humanlm eval`` command (run folder with
  ``samples.jsonl``, ``results.json``, ``config.yaml``; resumable);
- ``evaluate_examples(examples, simulator=..., judge=..., embedder=...)`` -> sample records,
  for callers that already hold a simulator (the demo);
- ``aggregate_records(records)`` -> run scores x 100 with bootstrap 95% intervals;
- ``population_metrics(records)`` -> diversity, distribution and detectability of the replies
  as a population (``humanlm.eval.population``);
- ``rescore_run(run_dir, judge=...)`` -> the saved replies of a run judged again;
- ``write_report(run_dirs, out=...)`` -> ``report.md`` + a self-contained ``report.html``.
"""

from humanlm.eval.config import PAPER_JUDGE, PROTOCOL_VERSION, EvalConfig
from humanlm.eval.population import population_metrics
from humanlm.eval.rescore import rescore_run
from humanlm.eval.run import EvalResult, evaluate_examples, evaluate_examples_async, run_eval
from humanlm.eval.stats import MetricSummary, aggregate_records, bootstrap_interval, summarize

__all__ = [
    "PAPER_JUDGE",
    "PROTOCOL_VERSION",
    "EvalConfig",
    "EvalResult",
    "MetricSummary",
    "aggregate_records",
    "bootstrap_interval",
    "evaluate_examples",
    "evaluate_examples_async",
    "population_metrics",
    "rescore_run",
    "run_eval",
    "summarize",
]
