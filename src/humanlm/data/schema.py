"""The Humanual row schema: turn a raw row (hub, parquet, JSON lines) into a validated `SourceRow`.

Every row from every kind of source goes through `normalize_row`, so a hub row and a local row
are checked by the same rules. Problems raise `DataError` naming the file, the 0-based row and the
field (``prompt[2].content``, ``persona.interests``, ...).

Example:
    >>> row = normalize_row(raw, file="train.jsonl", row=0, dataset="reddit")  # doctest: +SKIP
    >>> row.prompt[0]["metadata"]["author"]  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from humanlm.data.sources import resolve_dataset
from humanlm.errors import DataError

__all__ = [
    "PERSONA_ITEM_MAX_CHARS",
    "PERSONA_LISTS",
    "PERSONA_MAX_CHARS",
    "Persona",
    "SourceRow",
    "normalize_row",
    "parse_persona",
    "persona_size_problem",
]

# The four item lists of a structured persona, in the order they are rendered.
PERSONA_LISTS: tuple[str, ...] = ("interests", "values", "communication", "statistics")

# Size limits of a persona, a bit above what the persona prompt asks for (at most 46 items,
# each one sentence of at most 30 words: about 200 characters, 10,000 in all). A persona model
# that rambles, or a source that holds something else, would otherwise fill every prompt.
PERSONA_ITEM_MAX_CHARS = 400  # one list item or demographic value
PERSONA_MAX_CHARS = 16_000  # the whole persona: its JSON text, or a plain-text persona

# A structured persona is a dict (`demographics` + the four lists); WildChat's is plain text.
Persona = dict[str, Any] | str

_Fail = Callable[[str, str], DataError]


@dataclass(frozen=True)
class SourceRow:
    """One validated row of a Humanual-format source.

    Attributes:
        file: where the row came from (a path, or ``repo[split]`` for the hub).
        index: 0-based row number in that file (for JSON lines: the line number).
        dataset: our dataset id (``reddit``, ..., ``generic``).
        user_id: the target user; never shown to the model.
        post_id: the thread / product / video / conversation.
        turn_id: number of context messages.
        prompt: context messages ``{role, content, metadata}``, metadata parsed to a dict.
        completion: the real reply (the ground truth).
        persona: structured persona dict, or plain text used verbatim.
        timestamp: UTC seconds of the reply, if known.
        metadata: metadata of the reply (dict, possibly empty).
        trace: optional thinking trace for SFT-think ("" when absent).
        states: optional reference states, state name -> text (empty when absent).
    """

    file: str
    index: int
    dataset: str
    user_id: str
    post_id: str
    turn_id: int
    prompt: list[dict[str, Any]]
    completion: str
    persona: Persona
    timestamp: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    trace: str = ""
    states: dict[str, str] = field(default_factory=dict)


def normalize_row(raw: Mapping[str, Any], *, file: str, row: int, dataset: str | None) -> SourceRow:
    """Validate a raw row and return it as a `SourceRow`.

    Args:
        raw: the row as read (``prompt`` a list or a JSON string of one; ``metadata`` JSON
            strings or dicts; optional columns may be missing).
        file: file name for error messages.
        row: 0-based row number for error messages.
        dataset: our dataset id. ``None`` takes it from the row's ``dataset`` column. When both
            are given they must agree.

    Raises:
        DataError: naming file, row and field, for any schema violation.
    """

    def fail(message: str, field_name: str) -> DataError:
        return DataError(message, file=file, row=row, field=field_name)

    dataset_id = _resolve_row_dataset(raw.get("dataset"), dataset, file=file, row=row)

    completion = raw.get("completion")
    if completion is None:
        raise fail("missing completion (the user's real reply)", "completion")
    if not isinstance(completion, str):
        raise fail(f"completion must be a string, got {type(completion).__name__}", "completion")
    if not completion.strip():
        raise fail("completion is empty", "completion")

    user_id = _required_id(raw, "user_id", fail)
    post_id = _required_id(raw, "post_id", fail)
    prompt = _parse_prompt(raw.get("prompt"), fail)
    turn_id = _parse_turn_id(raw.get("turn_id"), len(prompt), fail)
    return SourceRow(
        file=file,
        index=row,
        dataset=dataset_id,
        user_id=user_id,
        post_id=post_id,
        turn_id=turn_id,
        prompt=prompt,
        completion=completion,
        persona=parse_persona(raw.get("persona"), file=file, row=row),
        timestamp=_parse_timestamp(raw.get("timestamp"), fail),
        metadata=_parse_metadata(raw.get("metadata"), "metadata", fail),
        trace=_optional_text(raw.get("trace"), "trace", fail),
        states=_parse_states(raw.get("states"), fail),
    )


def parse_persona(value: Any, *, file: str | None = None, row: int | None = None) -> Persona:
    """Return a structured persona dict, or plain text for any string not starting with ``{``.

    A missing persona is the empty string (rendered as "Missing" by the prompt builder).

    Raises:
        DataError: the text starts with ``{`` but is not a JSON object of the persona schema,
            or the persona breaks a size limit (`persona_size_problem`).
    """
    if value is None:
        return ""
    persona = _parse_persona(value, file=file, row=row)
    problem = persona_size_problem(persona)
    if problem is not None:
        where, message = problem
        raise DataError(message, file=file, row=row, field=where)
    return persona


def persona_size_problem(persona: Persona) -> tuple[str, str] | None:
    """``(field, problem)`` when ``persona`` breaks a size limit or holds a demographic value
    that is not a finite number or text; ``None`` when it is fine.

    Fields are named like ``persona.interests[3]``; the limits are `PERSONA_ITEM_MAX_CHARS`
    per item and `PERSONA_MAX_CHARS` in all.
    """
    if isinstance(persona, str):
        text = persona
    else:
        for key, value in persona.get("demographics", {}).items():
            where = f"persona.demographics.{key}"
            if isinstance(value, float) and not math.isfinite(value):
                return where, f"{value} is not a value; use text, or null when unknown"
            if isinstance(value, str) and len(value) > PERSONA_ITEM_MAX_CHARS:
                return where, _too_long("value", len(value), PERSONA_ITEM_MAX_CHARS)
        for name in PERSONA_LISTS:
            for i, item in enumerate(persona.get(name, [])):
                if len(item) > PERSONA_ITEM_MAX_CHARS:
                    where = f"persona.{name}[{i}]"
                    return where, _too_long("item", len(item), PERSONA_ITEM_MAX_CHARS)
        text = json.dumps(persona, ensure_ascii=False)
    if len(text) > PERSONA_MAX_CHARS:
        return "persona", _too_long("persona", len(text), PERSONA_MAX_CHARS)
    return None


def _too_long(what: str, size: int, limit: int) -> str:
    return f"the {what} has {size:,} characters; the limit is {limit:,}"


def _parse_persona(value: Any, *, file: str | None, row: int | None) -> Persona:
    if isinstance(value, Mapping):
        data: Any = dict(value)
    elif isinstance(value, str):
        if not value.lstrip().startswith("{"):
            return value.strip()
        try:
            data = json.loads(value)
        except json.JSONDecodeError as err:
            raise DataError(
                f"persona starts with '{{' but is not valid JSON ({err.msg} at char {err.pos})",
                file=file,
                row=row,
                field="persona",
            ) from None
        if not isinstance(data, dict):
            raise DataError("persona JSON is not an object", file=file, row=row, field="persona")
    else:
        raise DataError(
            f"persona must be a string or an object, got {type(value).__name__}",
            file=file,
            row=row,
            field="persona",
        )
    return _check_persona(data, file=file, row=row)


def _check_persona(data: dict[str, Any], *, file: str | None, row: int | None) -> dict[str, Any]:
    demographics = data.get("demographics") or {}
    if not isinstance(demographics, dict):
        raise DataError(
            "persona demographics must be an object",
            file=file,
            row=row,
            field="persona.demographics",
        )
    persona: dict[str, Any] = {"demographics": {str(k): v for k, v in demographics.items()}}
    for name in PERSONA_LISTS:
        items = data.get(name)
        if items is None:
            items = []
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise DataError(
                f"persona {name} must be a list of strings",
                file=file,
                row=row,
                field=f"persona.{name}",
            )
        persona[name] = items
    return persona


def _resolve_row_dataset(value: Any, dataset: str | None, *, file: str, row: int) -> str:
    if value is None or value == "":
        if dataset is None:
            raise DataError(
                "no dataset column in this row; pass the dataset id explicitly",
                file=file,
                row=row,
                field="dataset",
            )
        return dataset
    row_dataset = resolve_dataset(str(value), file=file, row=row)
    if dataset is not None and row_dataset != dataset:
        raise DataError(
            f"row is from dataset {value!r} ({row_dataset}) but {dataset!r} was requested",
            file=file,
            row=row,
            field="dataset",
        )
    return row_dataset


def _required_id(raw: Mapping[str, Any], name: str, fail: _Fail) -> str:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise fail(f"missing {name}", name)
    text = str(value).strip()
    if not text:
        raise fail(f"{name} is empty", name)
    return text


def _parse_prompt(value: Any, fail: _Fail) -> list[dict[str, Any]]:
    if value is None:
        raise fail("missing prompt (the list of context messages)", "prompt")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise fail(f"prompt is a string but not JSON ({err.msg})", "prompt") from None
    if not isinstance(value, list):
        raise fail(f"prompt must be a list of messages, got {type(value).__name__}", "prompt")
    messages = []
    for i, message in enumerate(value):
        where = f"prompt[{i}]"
        if not isinstance(message, Mapping):
            raise fail(f"message must be an object, got {type(message).__name__}", where)
        content = message.get("content")
        if not isinstance(content, str):
            problem = "missing" if content is None else f"not a string ({type(content).__name__})"
            raise fail(f"message content is {problem}", f"{where}.content")
        role = message.get("role")
        if not isinstance(role, str) or not role.strip():
            raise fail("message role is missing or empty", f"{where}.role")
        metadata = _parse_metadata(message.get("metadata"), f"{where}.metadata", fail)
        messages.append({"role": role, "content": content, "metadata": metadata})
    return messages


def _parse_metadata(value: Any, where: str, fail: _Fail) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as err:
            raise fail(f"metadata is not valid JSON ({err.msg})", where) from None
        return parsed if isinstance(parsed, dict) else {}
    raise fail(f"metadata must be a JSON string or an object, got {type(value).__name__}", where)


def _parse_turn_id(value: Any, n_messages: int, fail: _Fail) -> int:
    if value is None:
        return n_messages
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise fail(f"turn_id must be an integer, got {type(value).__name__}", "turn_id")
    try:
        turn_id = int(value)
    except ValueError:
        raise fail(f"turn_id must be an integer, got {value!r}", "turn_id") from None
    # The author map (authors.py) relies on turn_id being the index of the reply in the thread.
    if turn_id != n_messages:
        raise fail(f"turn_id {turn_id} does not match the {n_messages} context messages", "turn_id")
    return turn_id


def _parse_timestamp(value: Any, fail: _Fail) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise fail(f"timestamp must be UTC seconds, got {type(value).__name__}", "timestamp")
    try:
        return int(float(value))
    except ValueError:
        raise fail(f"timestamp must be UTC seconds, got {value!r}", "timestamp") from None


def _optional_text(value: Any, name: str, fail: _Fail) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise fail(f"{name} must be a string, got {type(value).__name__}", name)
    return value


def _parse_states(value: Any, fail: _Fail) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise fail(f"states is a string but not JSON ({err.msg})", "states") from None
    if isinstance(value, list):  # parquet map columns read back as (key, value) pairs
        try:
            value = dict(value)
        except (TypeError, ValueError):
            raise fail("states must map state names to text", "states") from None
    if not isinstance(value, Mapping):
        raise fail(f"states must map state names to text, got {type(value).__name__}", "states")
    # Parquet struct columns fill the states a row lacks with None.
    states = {str(k): v for k, v in value.items() if v is not None}
    for name, text in states.items():
        if not isinstance(text, str):
            raise fail(f"state {name!r} must be text, got {type(text).__name__}", f"states.{name}")
    return states
