"""The Humanual format: load and validate rows, render contexts and personas, write prepared parquet.

Reading order: `sources` (dataset ids), `schema` (row validation), `load` (files, folders, hub),
`render` and `authors` (context messages, HUMAN naming), `transcript`
(context messages as prompt text, untrusted text sanitised), `persona` (persona text and dropout),
`prepare` (`run_prepare`, `load_prepared`), `resolve` (the source of a run) and `validate`
(`validate_source`).

Building Humanual data from raw dumps lives in ``humanlm.build``; LLM personas and thinking
traces in ``humanlm.enrich``.
"""

from importlib import import_module
from typing import Any

# name -> module, imported on first use (the hub loader pulls in datasets, seconds of import).
_WHERE = {
    "learn_author_map": "authors",
    "SplitSource": "load",
    "find_splits": "load",
    "iter_rows": "load",
    "load_rows": "load",
    "MIN_PERSONA_ITEMS": "persona",
    "count_persona_items": "persona",
    "drop_persona_fields": "persona",
    "render_persona": "persona",
    "PREPARED_COLUMNS": "prepare",
    "PrepareSummary": "prepare",
    "build_example_id": "prepare",
    "load_prepared": "prepare",
    "run_prepare": "prepare",
    "RENDERERS": "render",
    "render_context": "render",
    "render_message": "render",
    "SourceRow": "schema",
    "normalize_row": "schema",
    "parse_persona": "schema",
    "DATASET_IDS": "sources",
    "DATASETS": "sources",
    "resolve_dataset": "sources",
    "ValidationReport": "validate",
    "validate_source": "validate",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'humanlm.data' has no attribute {name!r}")
    return getattr(import_module(f"humanlm.data.{_WHERE[name]}"), name)


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
