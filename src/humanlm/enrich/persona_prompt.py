"""The persona prompt and the check of a persona model's reply against the Humanual persona schema.

Templates live in ``data/prompts/*.md`` and are versioned in ``data/prompts/VERSIONS`` (name,
version, sha256 prefix of the text); bump the version whenever a template changes.

Example:
    >>> persona, problem = parse_persona_reply('{"demographics": {}}')
    >>> persona, problem
    (None, 'interests must be a list of strings')
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from humanlm.data.persona import DEMOGRAPHICS
from humanlm.llm.jsonreply import read_json_object
from humanlm.llm.templates import PromptFolder
from humanlm.states.render import render

__all__ = [
    "LIST_SIZES",
    "PersonaReply",
    "build_persona_prompt",
    "parse_persona_reply",
    "persona_prompt_version",
    "render_retry_prompt",
]

# Allowed item counts per persona list (the Humanual persona format).
LIST_SIZES: dict[str, tuple[int, int]] = {
    "interests": (8, 12),
    "values": (8, 12),
    "communication": (8, 12),
    "statistics": (5, 10),
}
_MAX_REPLY_CHARS = 1500
_MAX_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class PersonaReply:
    """One reply shown to the persona model: its text, time and what it answered."""

    text: str
    timestamp: int | None = None
    answered_author: str = ""
    answered_text: str = ""


PROMPTS = PromptFolder("humanlm.enrich")


def _template(name: str) -> str:
    return PROMPTS.load(name)


def persona_prompt_version() -> str:
    """Version of the persona prompt, from ``enrich/prompts/VERSIONS``."""
    return PROMPTS.version("persona")


def build_persona_prompt(replies: Sequence[PersonaReply]) -> str:
    """The persona prompt for one user's replies (oldest first), long texts shortened."""
    blocks = []
    for n, reply in enumerate(replies, start=1):
        when = ""
        if reply.timestamp is not None:
            when = dt.datetime.fromtimestamp(reply.timestamp, dt.timezone.utc).strftime(
                " (%Y-%m-%d)"
            )
        excerpt = _shorten(reply.answered_text, _MAX_EXCERPT_CHARS)
        answered = f"{reply.answered_author or 'someone'} wrote: {excerpt}" if excerpt else "a post"
        blocks.append(
            f"## Message {n}{when}\nIn answer to {answered}\n\n{_shorten(reply.text, _MAX_REPLY_CHARS)}"
        )
    words = [len(r.text.split()) for r in replies]
    facts = (
        f"{len(replies)} messages; median length {statistics.median(words):g} words, "
        f"shortest {min(words)}, longest {max(words)}"
        if words
        else "no messages"
    )
    return render(
        _template("persona"), count=len(replies), facts=facts, messages="\n\n".join(blocks)
    )


def parse_persona_reply(text: str | None) -> tuple[dict[str, Any] | None, str]:
    """Read a persona from a model reply and check it against the schema.

    Accepts the JSON object alone or inside a code fence. Missing demographic fields become
    "NA"; list items are stripped.

    Returns:
        ``(persona, "ok")``, or ``(None, problem)`` naming what is wrong.
    """
    data, problem = read_json_object(text)
    if data is None:
        return None, problem
    demographics = data.get("demographics")
    if not isinstance(demographics, dict):
        return None, "demographics must be an object"
    persona: dict[str, Any] = {"demographics": {}}
    for key in DEMOGRAPHICS:
        value = demographics.get(key, "NA")
        if value is None:
            value = "NA"
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return None, f"demographics.{key} must be text"
        persona["demographics"][key] = str(value).strip() or "NA"
    for name, (low, high) in LIST_SIZES.items():
        items = data.get(name)
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            return None, f"{name} must be a list of strings"
        items = [i.strip() for i in items if i.strip()]
        if not low <= len(items) <= high:
            return None, f"{name} has {len(items)} items; it needs {low} to {high}"
        persona[name] = items
    return persona, "ok"


def render_retry_prompt(problem: str) -> str:
    """The follow-up message that sends an unusable reply's problem back to the model."""
    return render(_template("persona_retry"), problem=problem)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split()) if len(text) > limit else text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
