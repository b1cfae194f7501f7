"""Build Humanual-format datasets from raw dumps of posts and replies (``humanlm data build``).

Reading order: `layouts` and `raw_formats` (reading items), `threads` (replies and the context
each one answered), `splits` (per-user filters, temporal/turn/user splits), `output` and `card`
(the written folder), `dataset` (`run_build`).
"""

from humanlm.ingest.dataset import BuildSummary, run_build
from humanlm.ingest.layouts import LAYOUTS
from humanlm.ingest.raw_formats import read_items
from humanlm.ingest.splits import assign_splits, parse_ratios

__all__ = ["LAYOUTS", "BuildSummary", "assign_splits", "parse_ratios", "read_items", "run_build"]
