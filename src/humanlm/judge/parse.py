"""Reading judge replies: tolerant JSON extraction, scores aligned by number or state name.

Models wrap JSON in code fences, add prose, leave trailing commas, quote numbers or list the
candidates in any order. ``parse_group_reply`` accepts all of that but aligns scores to
candidates strictly **by the number the judge wrote**, never by position, and reports anything
it cannot align as a failure reason instead of guessing. A reply whose JSON repeats a key or
holds two different score objects is a ``parse_failure`` whose ``detail`` says so: the standard
parser would keep the last value of a repeated key, a silent choice by position. With the Chat gate every candidate's
entry must also say ``"assistant_voice": true|false`` (``"yes"``/``"no"`` and quoted booleans
are read too); a reply missing it for any candidate is a ``parse_failure``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from humanlm.llm.jsonreply import find_json

__all__ = ["SCALE_TOLERANCE", "ParsedReply", "on_scale", "parse_aspects_reply", "parse_group_reply"]

# A score written as a string: the number alone, or over 1 ("0.7", "0.7/1", " 1.0 ").
_NUMBER_TEXT = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:/\s*1(?:\.0*)?)?\s*$")
_KEY_NUMBER = re.compile(r"^\D{0,12}?(\d+)\D{0,3}$")
_ID_FIELDS = ("candidate", "id", "number", "index", "key", "name", "state", "dimension")
# Rounding slack: a score within this of [0, 1] is read as the bound; beyond it the judge used
# another scale (or made an error) and the reply is refused as ``off_scale``, never clipped.
SCALE_TOLERANCE = 0.05


@dataclass(frozen=True)
class ParsedReply:
    """A judge reply read into scores keyed by candidate number (``"1"``..) or state name.

    Attributes:
        reason: ``ok`` or why the reply is unusable (``empty``, ``parse_failure``,
            ``wrong_count``, ``off_scale``).
        scores: key -> score in [0, 1]; empty unless ``reason == "ok"``.
        thoughts: key -> the judge's justification, where given.
        key_points: key points of the real reply (group mode).
        assistant_voice: key -> the Chat gate's answer (group mode with the gate; else empty).
        detail: what made the reply unusable (``duplicate key 'score'``, ``no score for '2'``,
            ``the score of '1' is 1.7, not in [0, 1]``); ``None`` when it is ok.
    """

    reason: str
    scores: dict[str, float] = field(default_factory=dict)
    thoughts: dict[str, str | None] = field(default_factory=dict)
    key_points: tuple[str, ...] = ()
    assistant_voice: dict[str, bool] = field(default_factory=dict)
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "scores": self.scores,
            "thoughts": self.thoughts,
            "key_points": list(self.key_points),
        }
        if self.assistant_voice:
            data["assistant_voice"] = self.assistant_voice
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParsedReply:
        return cls(
            "ok",
            {k: float(v) for k, v in data["scores"].items()},
            dict(data.get("thoughts") or {}),
            tuple(data.get("key_points") or ()),
            {k: bool(v) for k, v in (data.get("assistant_voice") or {}).items()},
        )


def _as_score(value: Any) -> float | None:
    """A score from a number, a numeric string ("0.7", "0.7/1") or an entry with a score field.

    Strings that are not just a number (``"high"``, ``"7/10"``, ``"about 0.5"``) give ``None``,
    and so does an entry whose score fields disagree (``{"score": 0.4, "rating": 1.0}``).
    """
    if isinstance(value, dict):
        read = {_as_score(value[n]) for n in ("score", "Score", "value", "rating") if n in value}
        return read.pop() if len(read) == 1 else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _NUMBER_TEXT.match(value)
        return float(match.group(1)) if match else None
    return None


def on_scale(score: float) -> float | None:
    """``score`` read on the 0-1 scale: itself, a bound within the rounding slack, or ``None``."""
    if not math.isfinite(score):
        return None
    if -SCALE_TOLERANCE <= score < 0.0:
        return 0.0
    if 1.0 < score <= 1.0 + SCALE_TOLERANCE:
        return 1.0
    return score if 0.0 <= score <= 1.0 else None


_FLAG_TEXT = {"true": True, "yes": True, "false": False, "no": False}


def _as_flag(value: Any) -> bool | None:
    """A yes/no answer from a boolean, ``0``/``1`` or a word (``"true"``, ``"no"``); else ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _FLAG_TEXT.get(value.strip().lower())
    return None


def _thought(value: Any) -> str | None:
    if isinstance(value, dict):
        for name in ("thought", "reason", "reasoning", "explanation", "rationale"):
            if isinstance(value.get(name), str):
                return value[name]
    return None


def _entries(scores: Any) -> list[tuple[str, Any]] | None:
    """``(key, entry)`` pairs from a mapping, or from a list whose items name their own key."""
    if isinstance(scores, dict):
        return [(str(k), v) for k, v in scores.items()]
    if isinstance(scores, list):
        pairs = []
        for item in scores:
            if not isinstance(item, dict):
                return None  # a bare list has only positions, and positions are never trusted
            keys = {str(item[f]) for f in _ID_FIELDS if f in item}
            if len(keys) != 1:
                return None  # no number, or two that disagree ({"candidate": 2, "index": 1})
            pairs.append((keys.pop(), item))
        return pairs
    return None


def _aligned(
    obj: dict[str, Any], wanted: Sequence[str], normalise: Any
) -> tuple[str, dict[str, float], dict[str, str | None], str | None]:
    """``(reason, scores, thoughts, detail)``: ``detail`` says what is wrong when it is not ok."""
    pairs = _entries(obj.get("scores"))
    if pairs is None:
        return "parse_failure", {}, {}, "no 'scores' entries that each name their key"
    scores: dict[str, float] = {}
    thoughts: dict[str, str | None] = {}
    for raw_key, entry in pairs:
        key = normalise(raw_key)
        if key is None:
            return "wrong_count", {}, {}, f"unknown key {_short(raw_key)}"
        if key in scores:
            return "wrong_count", {}, {}, f"{_short(key)} is scored twice"
        score = _as_score(entry)
        if score is None:
            return "parse_failure", {}, {}, f"no single number as the score of {_short(key)}"
        read = on_scale(score)
        if read is None:
            return "off_scale", {}, {}, f"the score of {_short(key)} is {score:g}, not in [0, 1]"
        scores[key] = read
        thoughts[key] = _thought(entry)
    missing = [k for k in wanted if k not in scores]
    if missing:
        return "wrong_count", {}, {}, f"no score for {', '.join(map(_short, missing[:6]))}"
    extra = [k for k in scores if k not in wanted]
    if extra:
        return "wrong_count", {}, {}, f"a score for {_short(extra[0])}, which was not asked"
    return "ok", scores, thoughts, None


def _short(key: str) -> str:
    """A key from the reply, quoted and cut short (a reply may name anything)."""
    return repr(key if len(key) <= 40 else key[:40] + "...")


def _number_key(raw: str) -> str | None:
    match = _KEY_NUMBER.match(raw.strip())
    return str(int(match.group(1))) if match else None


def _voices(obj: dict[str, Any]) -> dict[str, bool] | None:
    """Candidate number -> ``assistant_voice`` of an aligned group reply; ``None`` if any is
    missing or unreadable."""
    voices = {}
    for raw_key, entry in _entries(obj.get("scores")) or ():
        flag = _as_flag(entry.get("assistant_voice")) if isinstance(entry, dict) else None
        if flag is None:
            return None
        voices[str(_number_key(raw_key))] = flag
    return voices


def parse_group_reply(text: str | None, count: int, *, gate: bool = False) -> ParsedReply:
    """Read a group reply for ``count`` candidates numbered ``"1"``..``str(count)``.

    Keys may be ``"1"``, ``1``, ``"candidate 1"`` or ``"#1"``; ``scores`` may also be a list of
    objects that carry their number (``{"candidate": 2, "score": 0.4}``). Scores may be strings.
    With ``gate`` every entry must carry ``assistant_voice`` as well.

    Returns:
        A ``ParsedReply``; ``reason`` is ``ok`` only when every number 1..count has exactly one
        score (and, with ``gate``, one ``assistant_voice``) and no other number appears.
    """
    if text is None or not text.strip():
        return ParsedReply("empty")
    obj, problem = find_json(text, prefer="scores")
    if obj is None:
        return ParsedReply("parse_failure", detail=problem)
    wanted = [str(i) for i in range(1, count + 1)]
    reason, scores, thoughts, detail = _aligned(obj, wanted, _number_key)
    if reason != "ok":
        return ParsedReply(reason, detail=detail)
    voices: dict[str, bool] = {}
    if gate:
        found = _voices(obj)
        if found is None:
            return ParsedReply("parse_failure", detail="no yes/no assistant_voice for a candidate")
        voices = found
    points = obj.get("key_points") or ()
    key_points = (
        tuple(str(p) for p in points) if isinstance(points, list | tuple) else (str(points),)
    )
    return ParsedReply("ok", scores, thoughts, key_points, voices)


def parse_aspects_reply(text: str | None, states: Sequence[str]) -> ParsedReply:
    """Read an aspects reply with one score per state name (case and spacing ignored).

    Returns:
        A ``ParsedReply`` keyed by state name; ``wrong_count`` if a state is missing or unknown.
    """
    if text is None or not text.strip():
        return ParsedReply("empty")
    obj, problem = find_json(text, prefer="scores")
    if obj is None:
        return ParsedReply("parse_failure", detail=problem)
    if "scores" not in obj and any(str(k).strip().lower() in states for k in obj):
        obj = {"scores": obj}  # tolerate the state mapping without its wrapper

    def normalise(raw: str) -> str | None:
        name = raw.strip().lower().replace(" ", "_")
        return name if name in states else None

    reason, scores, thoughts, detail = _aligned(obj, list(states), normalise)
    if reason != "ok":
        return ParsedReply(reason, detail=detail)
    return ParsedReply(reason, scores, thoughts)
