"""The Humanual format: load and validate rows, render contexts and personas, write prepared parquet.

Reading order: `sources` (dataset ids), `schema` (row validation), `load` (files, folders, hub),
`render` and `authors` (context messages, HUMAN naming), `persona` (persona text and dropout),
`prepare` (`run_prepare`, `load_prepared`), `resolve` (the source of a run) and `validate`
(`validate_source`).

Building Humanual data from raw dumps lives in ``humanlm.build``; LLM personas and thinking
traces in ``humanlm.enrich``.
"""

from humanlm.data.authors import learn_author_map
from humanlm.data.load import SplitSource, find_splits, iter_rows, load_rows
from humanlm.data.persona import (
    MIN_PERSONA_ITEMS,
    count_persona_items,
    drop_persona_fields,
    render_persona,
)
from humanlm.data.prepare import (
    PREPARED_COLUMNS,
    PrepareSummary,
    build_example_id,
    load_prepared,
    run_prepare,
)
from humanlm.data.render import RENDERERS, render_context, render_message
from humanlm.data.schema import SourceRow, normalize_row, parse_persona
from humanlm.data.sources import DATASET_IDS, DATASETS, resolve_dataset
from humanlm.data.validate import ValidationReport, validate_source

__all__ = [
    "DATASETS",
    "DATASET_IDS",
    "MIN_PERSONA_ITEMS",
    "PREPARED_COLUMNS",
    "RENDERERS",
    "PrepareSummary",
    "SourceRow",
    "SplitSource",
    "build_example_id",
    "count_persona_items",
    "drop_persona_fields",
    "find_splits",
    "iter_rows",
    "learn_author_map",
    "load_prepared",
    "load_rows",
    "normalize_row",
    "parse_persona",
    "render_context",
    "render_message",
    "render_persona",
    "resolve_dataset",
    "run_prepare",
    "ValidationReport",
    "validate_source",
]
