"""Evaluation: score any user simulator on Humanual with the paper's protocol (Table 1).

- ``run_eval(EvalConfig(...))`` -> ``EvalResult``: the ``humanlm eval`` command (run folder with
  ``samples.jsonl``, ``results.json``, ``config.yaml``; resumable);
- ``evaluate_examples(examples, simulator=..., judge=..., embedder=...)`` -> sample records,
  for callers that already hold a simulator (the demo);
- ``aggregate_records(records)`` -> run scores x 100 with bootstrap 95% intervals;
- ``rescore_run(run_dir, judge=...)`` -> the saved replies of a run judged again.

Population metrics live in ``humanlm.population``, reports and charts in ``humanlm.reports``.
"""

from humanlm._lazy import lazy_exports

# name -> module, imported on first use: the CLI reads EvalConfig's defaults for its --help
# without loading the judge and simulator stacks.
_WHERE = {
    "PAPER_JUDGE": "config",
    "PROTOCOL_VERSION": "config",
    "EvalConfig": "config",
    "rescore_run": "rescore",
    "EvalResult": "run",
    "evaluate_examples": "run",
    "evaluate_examples_async": "run",
    "run_eval": "run",
    "MetricSummary": "stats",
    "aggregate_records": "stats",
    "bootstrap_interval": "stats",
    "summarize": "stats",
}


__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = sorted(_WHERE)
