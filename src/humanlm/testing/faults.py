"""Injected faults for ``ScriptedServer``: each function returns one ``Reply``.

Transport faults (``rate_limited``, ``server_error``, ``hang``, ``disconnect``) are the same for
every client; content faults (``empty``, ``truncated``, ``null_content``) break what the client
reads. Judge-specific malformed replies (fenced JSON, reversed keys, string scores, wrong
candidate count) are built with ``humanlm.testing.judge_replies.group_reply``.
"""

from __future__ import annotations

import json

from humanlm.testing.server import Reply

__all__ = [
    "DEFAULT_FAULTS",
    "disconnect",
    "empty",
    "hang",
    "null_content",
    "rate_limited",
    "server_error",
    "truncated",
]


def rate_limited(retry_after: float = 0.05) -> Reply:
    """HTTP 429 with a ``Retry-After`` header in seconds."""
    return Reply(status=429, headers={"Retry-After": f"{retry_after:g}"})


def server_error(status: int = 500) -> Reply:
    """An HTTP 5xx error."""
    return Reply(status=status)


def hang(seconds: float = 30.0) -> Reply:
    """A reply that comes only after ``seconds`` (past any sensible client timeout)."""
    return Reply(content="{}", delay_s=seconds)


def disconnect() -> Reply:
    """Close the connection without an answer (a connection error on the client)."""
    return Reply(disconnect=True)


def empty() -> Reply:
    """A successful reply with empty content."""
    return Reply(content="")


def null_content() -> Reply:
    """A successful reply whose content is ``null``."""
    return Reply(content=None)


def truncated(text: str | None = None) -> Reply:
    """A reply cut in the middle of its JSON (as when the output token limit is hit)."""
    text = text or json.dumps(
        {"key_points": ["a"], "scores": {"1": {"thought": "close", "score": 0.5}}}
    )
    return Reply(content=text[: max(1, len(text) // 2)])


def _fast_hang() -> Reply:
    return hang(5.0)


# The mix the benchmark draws from: every transport and content fault, equally likely.
DEFAULT_FAULTS = (rate_limited, server_error, _fast_hang, disconnect, empty, truncated)
