"""Evaluation: score any user simulator on Humanual with the paper's protocol, and report it.

- ``run_eval(EvalConfig(...))`` -> ``EvalResult``: the ``humanlm eval`` command (run folder with
  ``samples.jsonl``, ``results.json``, ``config.yaml``; resumable);
- ``evaluate_examples(examples, simulator=..., judge=..., embedder=...)`` -> sample records,
  for callers that already hold a simulator (the demo);
- ``aggregate_records(records)`` -> run scores x 100 with bootstrap 95% intervals;
- ``write_report(run_dirs, out=...)`` -> ``report.md`` + a self-contained ``report.html``.
"""

from humanlm.eval.config import PAPER_JUDGE, PROTOCOL_VERSION, EvalConfig
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
    "run_eval",
    "summarize",
]
