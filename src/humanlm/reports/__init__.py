"""Reports of evaluation runs: ``report.md`` and a self-contained ``report.html`` with charts.

- ``write_report(run_dirs, out=...)`` (``report``): the main table, state alignment, population
  tables and figures (``population_report``, ``population_charts``), and reply excerpts;
- ``charts``: the PNG charts the report embeds;
- ``markdown``: ``report.md``, with run names and texts escaped;
- ``samples``: the worst and best sample excerpts, ties said as such.
"""

from humanlm._lazy import lazy_exports

_WHERE = {"write_report": "report"}

__getattr__ = lazy_exports(__name__, _WHERE)

__all__ = sorted(_WHERE)
