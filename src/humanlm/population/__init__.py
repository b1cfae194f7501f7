"""Population metrics: the replies of a run read as a population rather than one by one.

- ``population_metrics(records)`` -> diversity (``diversity``), length and verdict distributions
  against the real users' (``distribution``), and how easily a style classifier tells generated
  from real replies (``detect``), overall and per data source.
"""

from humanlm._lazy import lazy_exports

_WHERE = {"population_metrics": "metrics", "EmbeddingMemo": "metrics"}

__getattr__ = lazy_exports(__name__, _WHERE)

__all__ = sorted(_WHERE)
