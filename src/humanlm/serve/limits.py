"""The limits of one ``humanlm serve`` request (no web imports: the CLI's help reads them)."""

from __future__ import annotations

__all__ = ["LARGE_BODY_BYTES", "MAX_BODY_MB", "MAX_CHOICES", "MAX_DEPTH", "MAX_STOP_CHARS"]

# The request body limit (--max-body-mb): far above the longest context of common models
# (128k tokens are about 0.5 MB of text), far below what tokenising would take a minute for.
MAX_BODY_MB = 8.0
# Completions per request: chat ``n``, and prompts x ``n`` on /v1/completions.
MAX_CHOICES = 16
# Arrays and objects nested deeper than this are refused (a chat request needs 4 levels).
MAX_DEPTH = 32
# Characters per stop string: each distinct stop costs a table over the whole vocabulary.
MAX_STOP_CHARS = 256
# Bodies above this (16k tokens or so) are read one at a time, so a flood of huge requests holds one core
# and one prompt's tokens in memory, not one per request.
LARGE_BODY_BYTES = 64 << 10
