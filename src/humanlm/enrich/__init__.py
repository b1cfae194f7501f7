"""LLM enrichment of Humanual data: personas summarised from a user's replies, thinking traces.

Both ask a chat model once per item through ``humanlm.llm`` (retries, limits, cache, ledger) and
keep an append-only log so a rerun resumes where the last one stopped.
"""

from humanlm.enrich.personas import PersonaSummary, run_personas
from humanlm.enrich.traces import TraceSummary, run_traces

__all__ = ["PersonaSummary", "TraceSummary", "run_personas", "run_traces"]
