"""Persona text for the system prompt, the persona-size filter and deterministic persona dropout.

Example:
    >>> from humanlm.data.persona import render_persona
    >>> print(render_persona('{"demographics": {"gender": "female"}, "interests": ["chess"]}'))
    gender: female
    Interests:
      - chess
    Values:
      Missing
    Communication:
      Missing
    Statistics:
      Missing
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from humanlm.data.schema import PERSONA_LISTS, Persona, parse_persona

__all__ = [
    "DEMOGRAPHICS",
    "MIN_PERSONA_ITEMS",
    "count_persona_items",
    "drop_persona_fields",
    "render_persona",
]

DEMOGRAPHICS: tuple[str, ...] = (
    "age group",
    "gender",
    "location",
    "occupation",
    "nationality",
    "other",
)

# Rows whose structured persona has fewer list items than this are dropped.
MIN_PERSONA_ITEMS = 10

_UNKNOWN = {"", "na", "n/a", "none", "null", "unknown"}


def render_persona(persona: Persona | None) -> str:
    """Return the persona text the simulator sees.

    Structured personas give known demographics as ``key: value`` lines, then the Interests,
    Values, Communication and Statistics blocks as indented items ("Missing" when empty).
    Plain-text personas are returned verbatim (stripped).
    """
    persona = parse_persona(persona)
    if isinstance(persona, str):
        return persona
    lines = [f"{key}: {value}" for key, value in _known_demographics(persona)]
    for name in PERSONA_LISTS:
        lines.append(f"{name.capitalize()}:")
        items = [item.strip() for item in persona[name] if item.strip()]
        if items:
            lines.extend(f"  - {item}" for item in items)
        else:
            lines.append("  Missing")
    return "\n".join(lines)


def count_persona_items(persona: Persona | None) -> int | None:
    """Number of items across the four persona lists; ``None`` for plain text (not filterable)."""
    persona = parse_persona(persona)
    if isinstance(persona, str):
        return None
    return sum(1 for name in PERSONA_LISTS for item in persona[name] if item.strip())


def drop_persona_fields(
    persona: Persona, *, field_p: float, item_p: float, seed: int = 0
) -> Persona:
    """Drop whole persona fields and single list items, deterministically.

    Each demographic field and each of the four lists is dropped with probability ``field_p``
    (a dropped demographic becomes "NA", a dropped list becomes empty); each remaining list item
    is dropped with probability ``item_p``. The random generator is seeded from a SHA-256 of the
    persona and ``seed``, so the result is the same in every run and every process.

    Args:
        persona: a structured persona (dict or JSON text). Plain text is returned unchanged.
        field_p: probability of dropping a whole field, in [0, 1].
        item_p: probability of dropping one list item, in [0, 1].
        seed: varies the dropout between otherwise identical calls.

    Raises:
        ValueError: a probability outside [0, 1].
    """
    for name, p in (("field_p", field_p), ("item_p", item_p)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    persona = parse_persona(persona)
    if isinstance(persona, str):
        return persona
    canonical = json.dumps(persona, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(f"{seed}\n{canonical}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))

    demographics: dict[str, Any] = {}
    for key, value in persona["demographics"].items():
        demographics[key] = "NA" if rng.random() < field_p else value
    dropped: dict[str, Any] = {"demographics": demographics}
    for name in PERSONA_LISTS:
        # Draw for every item even when the field goes, so one choice never shifts the others.
        drop_field = rng.random() < field_p
        kept = [item for item in persona[name] if rng.random() >= item_p]
        dropped[name] = [] if drop_field else kept
    return dropped


def _known_demographics(persona: dict[str, Any]) -> list[tuple[str, str]]:
    demographics = persona["demographics"]
    keys = [k for k in DEMOGRAPHICS if k in demographics]
    keys += [k for k in demographics if k not in DEMOGRAPHICS]
    known = []
    for key in keys:
        value = demographics[key]
        if value is None or isinstance(value, dict | list):
            continue
        text = str(value).strip()
        if text.lower() not in _UNKNOWN:
            known.append((key, text))
    return known
