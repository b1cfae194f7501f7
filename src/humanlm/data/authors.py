"""Learn under which author names each target user wrote, so their earlier messages become HUMAN.

In Humanual the ``user_id`` is a hash of the author name that cannot be reversed. But a user's
reply reappears in later rows of the same thread: if row A (user U, post P, turn_id T, reply C)
and row B of post P has, at index T, a message whose content is C, that message is U's and its
author (role and rendered name) is one of U's names. Any message by such a name, in any of U's
rows, is U's own earlier message.

Example:
    >>> author_map = learn_author_map(rows)  # doctest: +SKIP
    >>> render_context(row, authors=author_map.get(row.user_id, ()))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from humanlm.data.render import PLACEHOLDER_AUTHORS, render_message
from humanlm.data.schema import SourceRow
from humanlm.states.template import HUMAN

__all__ = ["learn_author_map"]

# (dataset, post_id, position in the thread, digest of the text)
_Key = tuple[str, str, int, bytes]


def learn_author_map(rows: Iterable[SourceRow]) -> dict[str, set[str]]:
    """Map each ``user_id`` to the author names of their replies seen inside other rows' contexts.

    One pass over ``rows``; memory holds a short digest per reply and per distinct context
    message, not the texts.

    Args:
        rows: every row of a source (all splits), in any order.

    Returns:
        ``{user_id: {role, rendered name, ...}}``; users never seen in a context are absent.
        Placeholder names of deleted accounts ("NA", "[deleted]") are never learned.
    """
    replies: dict[_Key, set[str]] = {}
    authors: dict[_Key, dict[str, set[str]]] = {}
    for row in rows:
        replies.setdefault(_key(row, row.turn_id, row.completion), set()).add(row.user_id)
        # Message 0 is the post itself; replies start at turn 1.
        for index in range(1, len(row.prompt)):
            message = row.prompt[index]
            key = _key(row, index, message["content"])
            if message["role"] in authors.get(key, {}):
                continue
            rendered = render_message(row.dataset, message, index=index)
            if rendered["role"] == "user":
                authors.setdefault(key, {})[message["role"]] = {message["role"], rendered["name"]}
    author_map: dict[str, set[str]] = {}
    for key, by_role in authors.items():
        users = replies.get(key, set())
        # The same short text at the same depth of a thread ("NTA") can come from several people:
        # a key is evidence only when exactly one user replied it and one author wrote it.
        if len(users) != 1 or len(by_role) != 1:
            continue
        (names,) = by_role.values()
        names = {n for n in names if n.strip().lower() not in PLACEHOLDER_AUTHORS and n != HUMAN}
        if names:
            author_map.setdefault(next(iter(users)), set()).update(names)
    return author_map


def _key(row: SourceRow, index: int, text: str) -> _Key:
    digest = hashlib.blake2b(text.strip().encode("utf-8"), digest_size=12).digest()
    return (row.dataset, row.post_id, index, digest)
