"""JSON out of a model reply: the one reader for judges, detectors, persona and trace writers.

Models wrap JSON in prose or code fences and leave trailing commas. ``find_json`` tries the
whole text, each fenced block, then every ``{`` position, repairing trailing commas only.
We keep this small reader rather than json-repair: a guessing repair turns a cut-off judge reply
into made-up scores, where a reply we cannot read must stay unscored.

A reply is also refused when its meaning depends on which of two readings wins: an object that
repeats a key (``{"score": 0.4, "score": 1.0}``, at any depth; the standard parser keeps the
last one) or two different objects that both carry the key the caller looks for. Its problem
says which (``duplicate key 'score'``), so the caller can record it and ask again.

Example:
    >>> extract_json('Sure: ```json\\n{"a": 1,}\\n```')
    {'a': 1}
    >>> find_json('{"score": 0.4, "score": 1.0}')
    (None, "duplicate key 'score'")
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["DuplicateKeyError", "extract_json", "find_json", "loads_strict", "read_json_object"]

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", flags=re.DOTALL)
_FENCE_EDGES = re.compile(r"^\s*```[a-zA-Z]*\s*|\s*```\s*$")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice; ``key`` is the first one repeated."""

    def __init__(self, key: str):
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKeyError(key)
        obj[key] = value
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def loads_strict(text: str) -> Any:
    """``json.loads`` that refuses an object with a repeated key.

    Raises:
        DuplicateKeyError: some object, at any depth, repeats a key.
        json.JSONDecodeError: the text is not JSON.
    """
    return _DECODER.decode(text)


class _Reading:
    """What the attempts on one reply found: objects, and the first repeated key seen."""

    def __init__(self) -> None:
        self.duplicate: str | None = None

    def loads(self, text: str) -> Any:
        for candidate in (text, _TRAILING_COMMA.sub(r"\1", text)):
            try:
                return loads_strict(candidate)
            except DuplicateKeyError as err:
                self.duplicate = self.duplicate or err.key
                return None
            except ValueError:
                continue
        return None

    def objects_in(self, text: str) -> list[tuple[dict[str, Any], bool]]:
        """Every JSON object that starts at a ``{`` of ``text`` (outermost first), repaired if
        needed, each with whether it lies inside an object found before it."""
        found: list[tuple[dict[str, Any], bool]] = []
        repaired = _TRAILING_COMMA.sub(r"\1", text)
        for candidate in (text, repaired) if repaired != text else (text,):
            reach = -1  # the end of the outermost object found so far
            for start in (i for i, ch in enumerate(candidate) if ch == "{"):
                try:
                    obj, end = _DECODER.raw_decode(candidate, start)
                except DuplicateKeyError as err:
                    self.duplicate = self.duplicate or err.key
                    continue
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    found.append((obj, start < reach))
                    reach = max(reach, end)
            if found:
                break
        return found


def find_json(text: str, *, prefer: str | None = None) -> tuple[dict[str, Any] | None, str]:
    """Find the one JSON object a reply means.

    Args:
        text: the reply.
        prefer: a key; an object that has it wins over any other object in the reply, and two
            different outermost objects that have it make the reply ambiguous.

    Returns:
        ``(object, "ok")``, or ``(None, problem)``: no complete JSON object, a repeated key
        (``duplicate key 'score'``), or two different objects with ``prefer``.
    """
    reading = _Reading()
    whole = reading.loads(text.strip())
    objects: list[tuple[dict[str, Any], bool]] = []
    if isinstance(whole, dict):  # fences inside its strings are its content, not other answers
        objects.append((whole, False))
    else:
        for match in _FENCE.finditer(text):
            obj = reading.loads(match.group(1).strip())
            if isinstance(obj, dict):
                objects.append((obj, False))
    if not objects:
        objects = reading.objects_in(text)
    if reading.duplicate is not None:
        return None, f"duplicate key {reading.duplicate!r}"
    if not objects:
        return None, "no JSON object in the reply"
    if prefer is not None:
        having = [obj for obj, nested in objects if prefer in obj and not nested]
        having = having or [obj for obj, _ in objects if prefer in obj]
        if any(other != having[0] for other in having[1:]):
            return None, f"{len(having)} different JSON objects with {prefer!r} in the reply"
        if having:
            return having[0], "ok"
    return objects[0][0], "ok"


def extract_json(text: str, *, prefer: str | None = None) -> dict[str, Any] | None:
    """The object ``find_json`` finds, or ``None`` when it finds none or the reply is ambiguous."""
    return find_json(text, prefer=prefer)[0]


def read_json_object(
    text: str | None, *, what: str = "JSON object"
) -> tuple[dict[str, Any] | None, str]:
    """The JSON object of a reply, strictly: the text from its first ``{`` to its last ``}``.

    Stricter than ``find_json`` (no repair, no inner objects), because the problem goes back
    to the model, which then fixes its own reply.

    Args:
        text: the reply.
        what: how the problem names the expected object (``JSON object {"trace": "..."}``).

    Returns:
        ``(object, "ok")``, or ``(None, problem)``: no object, invalid JSON, a repeated key,
        not an object.
    """
    body = _FENCE_EDGES.sub("", (text or "").strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None, f"no {what} in the reply"
    try:
        data = loads_strict(body[start : end + 1])
    except DuplicateKeyError as err:
        return None, f"the JSON names the key {err.key!r} twice"
    except json.JSONDecodeError as err:
        return None, f"invalid JSON ({err.msg} at char {err.pos})"
    if not isinstance(data, dict):
        return None, "the JSON is not an object"
    return data, "ok"
