"""The Humanual format: load and validate rows, render contexts and personas, write prepared parquet.

Reading order: `sources` (dataset ids), `schema` (row validation), `load` (files, folders, hub),
`render` and `authors` (context messages, HUMAN naming), `transcript`
(context messages as prompt text, untrusted text sanitised), `persona` (persona text and dropout),
`prepare` (`run_prepare`, `load_prepared`), `resolve` (the source of a run) and `validate`
(`validate_source`).

Building Humanual data from raw dumps lives in ``humanlm.ingest``; LLM personas and thinking
traces in ``humanlm.enrich``.
"""

from humanlm._lazy import lazy_exports

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
    "render_transcript": "transcript",
    "sanitise": "transcript",
    "ValidationReport": "validate",
    "validate_source": "validate",
}


__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = sorted(_WHERE)
