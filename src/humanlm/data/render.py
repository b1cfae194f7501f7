"""Per-platform rendering of context messages into ``{role, name, content}`` prepared messages.

One small function per platform, looked up in the plain dict `RENDERERS`. Every function takes a
source message ``{role, content, metadata}`` and its index in the thread. `render_context` then
renames the target user's own earlier messages to HUMAN, so the real ``user_id`` never reaches
the model.

Example:
    >>> from humanlm.data.render import RENDERERS, render_context
    >>> RENDERERS["enron"]({"role": "a@x.com", "content": "Hi", "metadata": {}}, index=0)
    {'role': 'user', 'name': 'a@x.com', 'content': 'Hi'}
    >>> messages = render_context(row, authors={"mike.curry@enron.com"})  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Collection
from typing import Any

from humanlm.data.schema import SourceRow
from humanlm.states.template import HUMAN

__all__ = ["PLACEHOLDER_AUTHORS", "RENDERERS", "Renderer", "render_context", "render_message"]

Renderer = Callable[..., dict[str, str]]

# Author names that stand for "unknown" (deleted accounts etc.); never treated as one person.
PLACEHOLDER_AUTHORS = frozenset({"", "na", "n/a", "none", "null", "[deleted]", "[removed]"})

# Medium can show a story's topic in capitals ("POLITICS", "US POLITICS") above its title. Only
# known labels are dropped: the politics topics below and the story's own ``topics``/``tags``
# metadata; an all-caps title such as "WHY I QUIT MY JOB" stays.
MEDIUM_TOPIC_LABELS = frozenset(
    {
        "politics",
        "us politics",
        "world",
        "government",
        "election",
        "elections",
        "democracy",
        "society",
        "economics",
        "economy",
        "history",
        "culture",
        "news",
        "world politics",
        "international relations",
    }
)
_FIRST_LINE = re.compile(r"\A[ \t]*([^\n]{1,40}?)[ \t]*\n+")


def _user(name: str, content: str) -> dict[str, str]:
    return {"role": "user", "name": name, "content": content}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def render_reddit(message: dict[str, Any], *, index: int) -> dict[str, str]:
    """Author from ``metadata.author``; content verbatim."""
    author = _text(message["metadata"].get("author")) or message["role"]
    return _user(author, message["content"])


def render_amazon(message: dict[str, Any], *, index: int) -> dict[str, str]:
    """The product page as a bullet block; author is the store."""
    metadata = message["metadata"]
    store = _text(metadata.get("store"))
    name = f"Amazon store: {store}" if store else message["role"]
    return _user(name, _product_block(metadata) or message["content"])


def render_youtube(message: dict[str, Any], *, index: int) -> dict[str, str]:
    """A video becomes title, description and transcript under its channel; a comment is verbatim."""
    metadata = message["metadata"]
    if metadata.get("kind") != "youtube#video":
        author = _text(_find_key(metadata, "authorDisplayName")) or _text(metadata.get("author"))
        return _user(author or message["role"], message["content"])
    snippet = metadata.get("snippet") if isinstance(metadata.get("snippet"), dict) else {}
    channel = _text(snippet.get("channelTitle")) or _text(metadata.get("channelTitle"))
    title = _text(metadata.get("title")) or _text(snippet.get("title")) or message["role"]
    description = (
        message["content"].strip()
        or _text(metadata.get("description"))
        or _text(snippet.get("description"))
    )
    parts = [("Title", title), ("Description", description)]
    parts.append(("Transcript", _text(metadata.get("transcript"))))
    content = "\n\n".join(f"{label}: {text}" for label, text in parts if text)
    return _user(channel or message["role"], content)


def render_medium(message: dict[str, Any], *, index: int) -> dict[str, str]:
    """Author is the role; the story (message 0) loses a leading line that is a known topic label.

    A label is a capitalised line naming one of ``MEDIUM_TOPIC_LABELS`` or one of the story's own
    ``topics``/``tags`` (in ``metadata.counts``); any other first line, capitals or not, stays.
    """
    content = message["content"]
    if index == 0:
        match = _FIRST_LINE.match(content)
        if match and content[match.end() :].strip() and _is_topic_label(match[1], message):
            content = content[match.end() :]
    return _user(message["role"], content)


def _label_key(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").replace("_", " ").split())


def _is_topic_label(line: str, message: dict[str, Any]) -> bool:
    if line != line.upper() or not any(c.isalpha() for c in line):
        return False
    metadata = message.get("metadata")
    counts = metadata.get("counts") if isinstance(metadata, dict) else None
    own: set[str] = set()
    if isinstance(counts, dict):
        for key in ("topics", "tags"):
            values = counts.get(key)
            if isinstance(values, list):
                own.update(_label_key(v) for v in values if isinstance(v, str))
    key = _label_key(line)
    return key in MEDIUM_TOPIC_LABELS or key in own


def render_wildchat(message: dict[str, Any], *, index: int) -> dict[str, str]:
    """Model turns (role names a GPT model) are assistant turns; every other turn is HUMAN's.

    A WildChat conversation has one human, the target user, so no user turn needs the author map.
    """
    if "gpt" in message["role"].lower():
        return {"role": "assistant", "name": "assistant", "content": message["content"]}
    return _user(HUMAN, message["content"])


def render_enron(message: dict[str, Any], *, index: int) -> dict[str, str]:
    """Author is the sender address; content verbatim."""
    sender = _text(message["metadata"].get("from")) or message["role"]
    return _user(sender, message["content"])


def render_generic(message: dict[str, Any], *, index: int) -> dict[str, str]:
    """Author is the role; role ``assistant`` is an assistant turn."""
    if message["role"] == "assistant":
        return {"role": "assistant", "name": "assistant", "content": message["content"]}
    return _user(message["role"], message["content"])


RENDERERS: dict[str, Renderer] = {
    "reddit": render_reddit,
    "amazon": render_amazon,
    "medium": render_medium,
    "youtube": render_youtube,
    "wildchat": render_wildchat,
    "enron": render_enron,
    "generic": render_generic,
}


def render_message(dataset: str, message: dict[str, Any], *, index: int) -> dict[str, str]:
    """Render one source message with the renderer of ``dataset`` (no HUMAN renaming)."""
    return RENDERERS[dataset](message, index=index)


def render_context(row: SourceRow, *, authors: Collection[str] = ()) -> list[dict[str, str]]:
    """Render a row's context messages, naming the target user HUMAN.

    A user turn is the target's own when its role is the row's ``user_id`` (WildChat, generic
    data) or when its role or rendered author is one of ``authors``, the names under which this
    user wrote earlier (see `humanlm.data.authors.learn_author_map`).

    Args:
        row: a validated source row.
        authors: author names (roles or rendered names) of the target user.

    Returns:
        ``{role, name, content}`` messages, ``role`` being ``user`` or ``assistant``.
    """
    names = {a for a in authors if a.strip().lower() not in PLACEHOLDER_AUTHORS}
    names.add(row.user_id)
    rendered = []
    for index, message in enumerate(row.prompt):
        out = render_message(row.dataset, message, index=index)
        if out["role"] == "user" and (message["role"] in names or out["name"] in names):
            out = _user(HUMAN, out["content"])
        rendered.append(out)
    return rendered


def _product_block(metadata: dict[str, Any]) -> str:
    """Bullet lines for an Amazon product; empty fields are left out."""
    lines = []
    categories = [c for c in metadata.get("categories") or [] if _text(c)]
    category = " > ".join(categories) or _text(metadata.get("main_category"))
    price = _text(str(metadata.get("price") or ""))
    if price.lower() in {"none", "nan"}:
        price = ""
    elif re.fullmatch(r"\d+(\.\d+)?", price):
        price = f"${price}"
    for label, value in (
        ("Category", category),
        ("Title", _text(metadata.get("title"))),
        ("Subtitle", _text(metadata.get("subtitle"))),
        ("Price", price),
    ):
        if value:
            lines.append(f"- {label}: {value}")
    lines.extend(_author_lines(metadata.get("author")))
    description = " ".join(_text(d) for d in _as_list(metadata.get("description")) if _text(d))
    if description:
        lines.append(f"- Description: {description}")
    features = [_text(f) for f in _as_list(metadata.get("features")) if _text(f)]
    if features:
        lines.append("- Features:")
        lines.extend(f"  - {feature}" for feature in features)
    lines.extend(_detail_lines(metadata.get("details")))
    return "\n".join(lines)


def _author_lines(value: Any) -> list[str]:
    author = _parse_literal(value)
    if isinstance(author, str):
        return [f"- Author: {author}"] if author.strip() else []
    if not isinstance(author, dict):
        return []
    lines = []
    name = _text(author.get("name"))
    if name:
        lines.append(f"- Author: {name}")
    about = " ".join(_text(a) for a in _as_list(author.get("about")) if _text(a))
    if about:
        lines.append(f"- About the author: {about}")
    return lines


def _detail_lines(value: Any) -> list[str]:
    details = _parse_literal(value)
    if isinstance(details, str):
        return [f"- Details: {details}"] if details.strip() else []
    if not isinstance(details, dict) or not details:
        return []
    pairs = [(str(k).strip(), str(v).strip()) for k, v in details.items() if v is not None]
    lines = [f"  - {key}: {val}" for key, val in pairs if key and val]
    return ["- Details:", *lines] if lines else []


def _parse_literal(value: Any) -> Any:
    """A dict/list as is; a string as JSON, else as a Python literal, else the raw string."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text[0] not in "{[":
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _find_key(data: Any, key: str) -> Any:
    """Depth-first search for ``key`` in nested dicts and lists (YouTube nests comment snippets)."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        children = list(data.values())
    elif isinstance(data, list):
        children = data
    else:
        return None
    for child in children:
        found = _find_key(child, key)
        if found is not None:
            return found
    return None
