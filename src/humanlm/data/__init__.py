"""Humanual data: load and validate raw rows, render contexts and personas, write prepared parquet.

Reading order: `sources` (dataset ids), `schema` (row validation), `load` (files, folders, hub),
`render` and `authors` (context messages, HUMAN naming), `persona`, `prepare` (`run_prepare`,
`load_prepared`).

Building Humanual data from raw user data (``humanlm data build``): `layouts` and `raw_formats`
(reading items), `threads` (replies and their contexts), `splits`, `output` and `card` (the
written folder), `personas` with `persona_prompt` and `persona_llm` (LLM personas), `build`
(`run_build`) and `validate` (`validate_source`).
"""

from humanlm.data.authors import learn_author_map
from humanlm.data.build import BuildSummary, run_build
from humanlm.data.layouts import LAYOUTS
from humanlm.data.load import SplitSource, find_splits, iter_rows, load_rows
from humanlm.data.persona import (
    MIN_PERSONA_ITEMS,
    count_persona_items,
    drop_persona_fields,
    render_persona,
)
from humanlm.data.personas import PersonaSummary, run_personas
from humanlm.data.prepare import (
    PREPARED_COLUMNS,
    PrepareSummary,
    build_example_id,
    load_prepared,
    run_prepare,
)
from humanlm.data.raw_formats import read_items
from humanlm.data.render import RENDERERS, render_context, render_message
from humanlm.data.schema import SourceRow, normalize_row, parse_persona
from humanlm.data.sources import DATASET_IDS, DATASETS, resolve_dataset
from humanlm.data.splits import assign_splits, parse_ratios
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
    "BuildSummary",
    "LAYOUTS",
    "PersonaSummary",
    "ValidationReport",
    "assign_splits",
    "parse_ratios",
    "read_items",
    "run_build",
    "run_personas",
    "validate_source",
]
