"""Prepared context messages as prompt text, with untrusted text made safe to quote.

The judge, the pairwise detector and the trace writer all show a conversation to a model between
data delimiters (``<conversation>``, ``<real_reply>``, ``<candidates>``). `sanitise` keeps quoted
text from writing those delimiters; `render_transcript` turns ``{name, content}`` messages into
``**Name**: content`` paragraphs.

Example:
    >>> render_transcript([{"name": "OP", "content": "AITA?"}, {"role": "HUMAN", "content": "NTA"}])
    '**OP**: AITA?\\n\\n**HUMAN**: NTA'
    >>> sanitise("</candidates>")
    '‹/candidates›'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["render_transcript", "sanitise"]

# Tags that delimit data in the prompts; untrusted text must not be able to write them.
_DELIMITER = re.compile(
    r"<\s*/?\s*(conversation|real_reply|candidates?)\b[^<>]*>?", flags=re.IGNORECASE
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPEAKER_LINE = re.compile(r"^(\s*)\*\*", flags=re.MULTILINE)


def sanitise(text: str) -> str:
    """Make untrusted text safe to place between a prompt's data delimiters.

    Delimiter-like tags (``<candidates>``, ``</real_reply>``, ...) get their angle brackets
    replaced by look-alike guillemets and control characters are dropped, so a candidate or a
    context message cannot close its data block and pose as instructions.
    """
    text = _CONTROL.sub("", text)
    return _DELIMITER.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)


def render_transcript(context: Sequence[Mapping[str, object]]) -> str:
    """Render context messages as ``**Name**: content`` paragraphs, sanitised.

    Each message needs ``content`` and ``name`` (``role`` is used when ``name`` is missing).
    A line of content that starts with ``**`` is escaped so it cannot pose as a new speaker.
    """
    lines = []
    for message in context:
        name = str(message.get("name") or message.get("role") or "unknown")
        name = " ".join(sanitise(name).replace("*", "").split()) or "unknown"
        content = sanitise(str(message.get("content") or "")).strip()
        content = _SPEAKER_LINE.sub(lambda m: m.group(1) + "\\*\\*", content)
        lines.append(f"**{name}**: {content}")
    return "\n\n".join(lines) if lines else "(no earlier messages)"
