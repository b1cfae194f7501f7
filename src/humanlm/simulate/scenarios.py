"""Scenarios of simulated conversations: from a JSONL file or from prepared chat rows.

A scenario line is ``{"id", "persona", "goal" (optional), "messages" (optional opening turns)}``.
``persona`` is text or a Humanual persona object; ``messages`` use the roles the assistant sees
(``user`` = the simulated user, ``assistant``), start with ``user`` and alternate; they are kept
verbatim, first. With no opening turns the simulated user opens.

Example:
    >>> scenarios = load_scenarios("scenarios.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from humanlm.errors import DataError
from humanlm.files import iter_jsonl
from humanlm.states.template import HUMAN

__all__ = ["Scenario", "load_scenarios", "scenarios_from_prepared"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scenario:
    """One conversation to simulate.

    Attributes:
        id: unique within a run (the key for resuming).
        persona: text, or a Humanual persona object.
        goal: what the user wants from the conversation ("" when not given).
        messages: opening turns, as the assistant sees them.
    """

    id: str
    persona: str | Mapping[str, Any]
    goal: str = ""
    messages: tuple[dict[str, str], ...] = field(default_factory=tuple)

    def persona_for_user(self) -> str | Mapping[str, Any]:
        """The persona the simulated user gets: the goal is added to it."""
        if not self.goal:
            return self.persona
        if isinstance(self.persona, Mapping):
            from humanlm.data.persona import render_persona

            text = render_persona(dict(self.persona))
        else:
            text = self.persona.strip()
        return f"{text}\n\nWhat you want from this conversation: {self.goal.strip()}"


def _alternation_problem(messages: Sequence[Mapping[str, Any]]) -> str | None:
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            return f"messages[{i}] is not an object"
        want = "user" if i % 2 == 0 else "assistant"
        if m.get("role") != want:
            return f"messages[{i}].role must be {want!r} (turns start with user and alternate)"
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            return f"messages[{i}].content must be non-empty text"
    return None


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Read a scenarios JSONL file (module docstring).

    Raises:
        DataError: a missing file, a line that is not a JSON object, a missing or duplicate
            id, a missing persona, or opening turns that do not alternate (naming the row).
    """
    file = Path(path)
    if not file.is_file():
        raise DataError("no such scenarios file", file=str(file))
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    for row, raw in iter_jsonl(file, strict=True):
        if not isinstance(raw, dict):
            raise DataError("each line must be a JSON object", file=str(file), row=row)
        ident = raw.get("id")
        if not isinstance(ident, str | int) or str(ident) == "":
            raise DataError("missing id", file=str(file), row=row, field="id")
        if str(ident) in seen:
            raise DataError(f"duplicate id {ident!r}", file=str(file), row=row, field="id")
        persona = raw.get("persona")
        if not isinstance(persona, str | dict) or not persona:
            raise DataError(
                "persona must be text or a persona object", file=str(file), row=row, field="persona"
            )
        goal = raw.get("goal") or ""
        if not isinstance(goal, str):
            raise DataError("goal must be text", file=str(file), row=row, field="goal")
        messages = raw.get("messages") or []
        problem = (
            _alternation_problem(messages)
            if isinstance(messages, list)
            else "messages must be a list"
        )
        if problem:
            raise DataError(problem, file=str(file), row=row, field="messages")
        seen.add(str(ident))
        opening = tuple({"role": m["role"], "content": m["content"]} for m in messages)
        scenarios.append(Scenario(str(ident), persona, goal, opening))
    return scenarios


def scenarios_from_prepared(
    path: str | Path, *, dataset: str, limit: int | None = None
) -> list[Scenario]:
    """One scenario per prepared chat row of ``dataset``: its persona and the conversation so far.

    Rows whose turns do not alternate user/assistant (starting with the user) are left out and
    counted in the log.

    Raises:
        DataError: the file is not prepared data, or has no chat rows of ``dataset``.
    """
    from humanlm.data.prepare import load_prepared

    rows = [r for r in load_prepared(path) if r["data_source"] == dataset]
    scenarios, skipped = [], 0
    for row in rows:
        messages = [
            {"role": "user" if m["name"] == HUMAN else "assistant", "content": m["content"]}
            for m in row["messages"]
            if m["role"] == "assistant" or m["name"] == HUMAN
        ]
        if len(messages) != len(row["messages"]) or _alternation_problem(messages):
            skipped += 1
            continue
        scenarios.append(Scenario(row["example_id"], row["persona"], "", tuple(messages)))
        if limit is not None and len(scenarios) >= limit:
            break
    if skipped:
        logger.info("left out %d row(s) of %s that are not user/assistant chats", skipped, path)
    if not scenarios:
        raise DataError(
            f"no chat rows of dataset {dataset!r} (user and assistant turns only); "
            "use a chat dataset such as wildchat",
            file=str(path),
        )
    return scenarios
