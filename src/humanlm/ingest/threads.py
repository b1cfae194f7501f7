"""Turn raw items into reply rows: which items are targets, and the context each one answered.

Two ways to build a context (``--context``):

- ``chain``: the thread's post, then the reply's ancestors along ``parent_id`` links, oldest
  first (a Reddit comment sees the comments it answers, not its siblings);
- ``thread``: the thread's post, then every earlier item of the thread in time order (an email
  thread, a chat conversation);
- ``auto`` picks ``chain`` when any item names a parent, else ``thread``.

End rows (``end_examples``, thread contexts only): a conversation whose last message is an
assistant turn, after at least one reply row, also gets one row whose context is the whole
conversation and whose reply is the end signal: the user wrote nothing more.

Parent links are followed with dict lookups; cycles are cut once up front, so each context costs
time proportional to its own length and the whole build is linear in the output size.

Example:
    >>> replies = build_replies(items, context="auto")  # doctest: +SKIP
    >>> replies.context(0)  # item indices of row 0's context  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from array import array
from collections import Counter
from dataclasses import dataclass, field

from humanlm.data.render import PLACEHOLDER_AUTHORS
from humanlm.errors import ConfigError
from humanlm.ingest.layouts import ASSISTANT
from humanlm.ingest.raw_formats import Items

__all__ = ["CONTEXT_MODES", "DELETED_TEXTS", "Replies", "build_replies"]

logger = logging.getLogger(__name__)

CONTEXT_MODES: tuple[str, ...] = ("auto", "chain", "thread")
# Texts that stand for a removed message; such items are neither targets nor context.
DELETED_TEXTS = frozenset({"[deleted]", "[removed]"})


@dataclass
class Replies:
    """Reply rows as columns.

    Attributes:
        item: the reply's item index, per row.
        offsets: row ``i``'s context is ``flat[offsets[i]:offsets[i + 1]]`` (item indices).
        flat: the concatenated contexts.
        thread_start: the earliest timestamp in the row's thread (for temporal splits).
        mode: the context mode used (``chain`` or ``thread``).
        dropped: candidate replies left out, by reason.
        broken_chains: rows whose parent chain stops at a missing item (kept, post first).
        cycles: parent links cut because they closed a loop.
        end_of: per row, -1 for a real reply; for an end row, the row of its conversation's last
            real reply (whose user and split the end row takes). End rows come after every
            real row; their ``item`` is the conversation's last assistant turn.
    """

    item: list[int] = field(default_factory=list)
    offsets: array = field(default_factory=lambda: array("q", [0]))
    flat: array = field(default_factory=lambda: array("q"))
    thread_start: list[int] = field(default_factory=list)
    mode: str = "chain"
    dropped: Counter[str] = field(default_factory=Counter)
    broken_chains: int = 0
    cycles: int = 0
    end_of: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.item)

    def context(self, row: int) -> list[int]:
        """Item indices of row ``row``'s context, oldest first."""
        return list(self.flat[self.offsets[row] : self.offsets[row + 1]])

    @property
    def real(self) -> int:
        """Number of real reply rows (rows ``0 .. real - 1``; end rows follow)."""
        return sum(1 for e in self.end_of if e < 0)

    def _add(self, item: int, context: list[int], thread_start: int, end_of: int = -1) -> None:
        self.item.append(item)
        self.flat.extend(context)
        self.offsets.append(len(self.flat))
        self.thread_start.append(thread_start)
        self.end_of.append(end_of)


def build_replies(
    items: Items,
    *,
    context: str = "auto",
    max_reply_chars: int | None = None,
    max_reply_words: int | None = None,
    end_examples: bool = False,
) -> Replies:
    """Find every target reply and build its context.

    A target is an item that is not its thread's post, has text, a known (non-placeholder,
    non-assistant) author and a timestamp, and passes the length limits. Items that fail only
    these target rules still appear in other replies' contexts; items without text never do.

    Args:
        items: the raw items.
        context: ``auto``, ``chain`` or ``thread`` (see the module docstring).
        max_reply_chars: leave out replies longer than this many characters.
        max_reply_words: leave out replies longer than this many words (split on whitespace).
        end_examples: add an end row per conversation that ends with an assistant turn
            (``thread`` contexts only; ``chain`` contexts are not conversations).

    Raises:
        ConfigError: an unknown context mode.
    """
    if context not in CONTEXT_MODES:
        raise ConfigError(
            f"unknown context mode {context!r}; use one of {', '.join(CONTEXT_MODES)}"
        )
    mode = context if context != "auto" else ("chain" if items.has_parents else "thread")
    usable = [_has_text(t) for t in items.text]
    members: dict[str, list[int]] = {}
    for i, thread in enumerate(items.thread_id):
        members.setdefault(thread, []).append(i)
    posts = {t: i for i, t in enumerate(items.thread_id) if items.item_id[i] == t}
    starts = {t: _earliest(items, idx) for t, idx in members.items()}
    replies = Replies(mode=mode)
    limits = (max_reply_chars, max_reply_words)
    if mode == "chain":
        _chain_contexts(items, replies, usable=usable, posts=posts, starts=starts, limits=limits)
    else:
        _thread_contexts(
            items,
            replies,
            members,
            usable=usable,
            posts=posts,
            starts=starts,
            limits=limits,
            end_examples=end_examples,
        )
    logger.info(
        "%d replies (%s contexts), %d end rows; left out: %s",
        replies.real,
        mode,
        len(replies) - replies.real,
        dict(replies.dropped) or "none",
    )
    return replies


def _has_text(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and stripped not in DELETED_TEXTS


def _earliest(items: Items, indices: list[int]) -> int:
    stamps = [items.timestamp[i] for i in indices if items.timestamp[i] is not None]
    return min(stamps) if stamps else 0


def _target_problem(items: Items, i: int, usable: list[bool], limits: tuple) -> str | None:
    """Why item ``i`` cannot be a target reply, or None."""
    if not usable[i]:
        return "empty_text"
    author = items.author[i]
    if author.lower() in PLACEHOLDER_AUTHORS:
        return "deleted_author"
    if items.timestamp[i] is None:
        return "no_timestamp"
    max_chars, max_words = limits
    text = items.text[i]
    if max_chars is not None and len(text) > max_chars:
        return "too_long"
    if max_words is not None and len(text.split()) > max_words:
        return "too_long"
    return None


def _chain_contexts(
    items: Items,
    replies: Replies,
    *,
    usable: list[bool],
    posts: dict[str, int],
    starts: dict[str, int],
    limits: tuple,
) -> None:
    index = {item: i for i, item in enumerate(items.item_id)}
    n = len(items)
    is_post = [
        items.parent_id[i] is None or items.item_id[i] == items.thread_id[i] for i in range(n)
    ]
    parent = array("q", [-1]) * n
    for i in range(n):
        if not is_post[i]:
            j = index.get(items.parent_id[i], -1)
            # A parent in another thread is treated as missing: contexts never mix threads.
            if j != -1 and items.thread_id[j] == items.thread_id[i]:
                parent[i] = j
    replies.cycles = _cut_cycles(parent)
    for i in range(n):
        if is_post[i] or items.author[i] == ASSISTANT:
            continue
        problem = _target_problem(items, i, usable, limits)
        if problem is not None:
            replies.dropped[problem] += 1
            continue
        chain = []
        j = parent[i]
        while j != -1:
            chain.append(j)
            j = parent[j]
        chain.reverse()
        thread = items.thread_id[i]
        post = posts.get(thread)
        if not chain or not is_post[chain[0]]:
            replies.broken_chains += 1
        if post is not None and (not chain or chain[0] != post):
            chain.insert(0, post)
        context = [j for j in chain if usable[j]]
        if not context:
            replies.dropped["no_context"] += 1
            continue
        replies._add(i, context, starts[thread])


def _cut_cycles(parent: array) -> int:
    """Cut the link that closes each parent loop, in place; return how many were cut."""
    state = bytearray(len(parent))  # 0 unseen, 1 on the current walk, 2 done
    cut = 0
    for start in range(len(parent)):
        path = []
        j = start
        while j != -1 and state[j] == 0:
            state[j] = 1
            path.append(j)
            j = parent[j]
        if j != -1 and state[j] == 1:
            parent[path[-1]] = -1
            cut += 1
        for p in path:
            state[p] = 2
    return cut


def _thread_contexts(
    items: Items,
    replies: Replies,
    members: dict[str, list[int]],
    *,
    usable: list[bool],
    posts: dict[str, int],
    starts: dict[str, int],
    limits: tuple,
    end_examples: bool = False,
) -> None:
    stamps = items.timestamp
    ends: list[tuple[int, list[int], int, int]] = []
    for thread, indices in members.items():
        post = posts.get(thread)
        if post is None:  # the earliest item opens the thread (undated items first)
            post = min(indices, key=lambda i: (stamps[i] is not None, stamps[i] or 0, i))
        later = [i for i in indices if i != post]
        later.sort(key=lambda i: (stamps[i] is not None, stamps[i] or 0, i))
        seen = [post] if usable[post] else []
        last_row = -1
        for i in later:
            is_target = items.author[i] != ASSISTANT
            problem = _target_problem(items, i, usable, limits) if is_target else None
            if problem is not None:
                replies.dropped[problem] += 1
            elif is_target:
                if seen:
                    replies._add(i, seen, starts[thread])
                    last_row = len(replies) - 1
                else:
                    replies.dropped["no_context"] += 1
            # Undated items have no place in the time order, so they stay out of contexts too.
            if usable[i] and stamps[i] is not None:
                seen.append(i)
        # The user wrote nothing after the assistant's last turn: the conversation's end.
        if end_examples and last_row >= 0 and items.author[seen[-1]] == ASSISTANT:
            ends.append((seen[-1], list(seen), starts[thread], last_row))
    for item, context, start, last_row in ends:
        replies._add(item, context, start, end_of=last_row)
