"""JSON out of a model reply: the one extractor for judges, persona and trace writers.

Models wrap JSON in prose or code fences and leave trailing commas. ``extract_json`` tries the
whole text, each fenced block, then every ``{`` position, repairing trailing commas only.
We keep this small reader rather than json-repair: a guessing repair turns a cut-off judge reply
into made-up scores, where a reply we cannot read must stay unscored.

Example:
    >>> extract_json('Sure: ```json\\n{"a": 1,}\\n```')
    {'a': 1}
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["extract_json", "read_json_object"]

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", flags=re.DOTALL)
_FENCE_EDGES = re.compile(r"^\s*```[a-zA-Z]*\s*|\s*```\s*$")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return json.loads(_TRAILING_COMMA.sub(r"\1", text))
    except ValueError:
        return None


def _objects_in(text: str) -> list[dict[str, Any]]:
    """Every JSON object that starts at a ``{`` of ``text`` (outermost first), repaired if needed."""
    found = []
    decoder = json.JSONDecoder()
    repaired = _TRAILING_COMMA.sub(r"\1", text)
    for candidate in (text, repaired) if repaired != text else (text,):
        for start in (i for i, ch in enumerate(candidate) if ch == "{"):
            try:
                obj, _end = decoder.raw_decode(candidate, start)
            except ValueError:
                continue
            if isinstance(obj, dict):
                found.append(obj)
        if found:
            break
    return found


def extract_json(text: str, *, prefer: str | None = None) -> dict[str, Any] | None:
    """Find the JSON object in a reply.

    Args:
        text: the reply.
        prefer: a key; an object that has it wins over any other object in the reply.

    Returns:
        The object, or ``None`` when the reply holds no complete JSON object.
    """
    pieces = [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]
    objects: list[dict[str, Any]] = []
    for piece in pieces:
        obj = _loads(piece)
        if isinstance(obj, dict):
            objects.append(obj)
    if not objects:
        objects = _objects_in(text)
    if prefer is not None:
        for obj in objects:
            if prefer in obj:
                return obj
    return objects[0] if objects else None


def read_json_object(
    text: str | None, *, what: str = "JSON object"
) -> tuple[dict[str, Any] | None, str]:
    """The JSON object of a reply, strictly: the text from its first ``{`` to its last ``}``.

    Stricter than ``extract_json`` (no repair, no inner objects), because the problem goes back
    to the model, which then fixes its own reply.

    Args:
        text: the reply.
        what: how the problem names the expected object (``JSON object {"trace": "..."}``).

    Returns:
        ``(object, "ok")``, or ``(None, problem)``: no object, invalid JSON, not an object.
    """
    body = _FENCE_EDGES.sub("", (text or "").strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None, f"no {what} in the reply"
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError as err:
        return None, f"invalid JSON ({err.msg} at char {err.pos})"
    if not isinstance(data, dict):
        return None, "the JSON is not an object"
    return data, "ok"
