"""Named column layouts: how the raw dumps of the six Humanual platforms map onto our item fields.

Our fields are `FIELDS`; each layout gives, per field, a source expression where ``a|b`` means
"column ``a``, or ``b`` when ``a`` is missing or empty" and ``a+b`` joins the non-empty columns
with a blank line. ``docs/data_build.md`` explains each layout in prose; ``--columns`` overrides
single fields of any layout.

Example:
    >>> LAYOUTS["reddit"].columns["text"]
    'body|title+selftext'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ASSISTANT", "FIELDS", "LAYOUTS", "Layout"]

FIELDS: tuple[str, ...] = (
    "item_id",
    "thread_id",
    "parent_id",
    "author",
    "text",
    "timestamp",
    "metadata",
)
# Our own name for model turns: an item by this author is an assistant turn, never a target.
ASSISTANT = "assistant"


@dataclass(frozen=True)
class Layout:
    """How one raw layout maps onto our item fields.

    Attributes:
        columns: our field -> source expression (``a|b`` alternatives, ``a+b`` joined text).
        keep: source columns copied into the item metadata when present.
        id_prefix: a regex removed from the start of item, thread and parent ids (Reddit's
            ``t1_``/``t3_`` kind prefixes).
        assistant_when: ``(column, value)``: rows where the column has this value are model
            turns, whatever their author column says.
        root_unless: a column only replies have: a row without it is its thread's post (its
            item id becomes the thread id), as Amazon product rows next to reviews.
    """

    columns: Mapping[str, str]
    keep: tuple[str, ...] = ()
    id_prefix: str | None = None
    assistant_when: tuple[str, str] | None = None
    root_unless: str | None = None


LAYOUTS: dict[str, Layout] = {
    "generic": Layout(columns={f: f for f in FIELDS}),
    "reddit": Layout(
        columns={
            "item_id": "id",
            "thread_id": "link_id|id",
            "parent_id": "parent_id",
            "author": "author",
            "text": "body|title+selftext",
            "timestamp": "created_utc",
        },
        keep=("subreddit", "score", "title", "permalink"),
        id_prefix=r"^t[1-6]_",
    ),
    "enron": Layout(
        columns={
            "item_id": "message_id",
            "thread_id": "thread|thread_id",
            "parent_id": "in_reply_to",
            "author": "from|sender",
            "text": "body|content",
            "timestamp": "date",
        },
        keep=("subject", "to", "cc"),
    ),
    "amazon": Layout(
        columns={
            "item_id": "review_id",
            "thread_id": "parent_asin",
            "parent_id": "parent_asin",
            "author": "user_id|store",
            "text": "text|title+description+features",
            "timestamp": "timestamp",
        },
        keep=("rating", "title", "helpful_vote", "verified_purchase", "main_category", "price"),
        root_unless="user_id",
    ),
    "youtube": Layout(
        columns={
            "item_id": "comment_id|video_id",
            "thread_id": "video_id",
            "parent_id": "parent_id|video_id",
            "author": "author_display_name|author|channel_title",
            "text": "text_original|text|title+description",
            "timestamp": "published_at",
        },
        keep=("like_count", "channel_title", "title"),
    ),
    "medium": Layout(
        columns={
            "item_id": "comment_id|response_id|post_id",
            "thread_id": "post_id",
            "parent_id": "parent_id|post_id",
            "author": "author|author_id",
            "text": "text|title+content",
            "timestamp": "published_at|created_at",
        },
        keep=("claps", "title", "tags"),
    ),
    "wildchat": Layout(
        columns={
            "item_id": "message_id",
            "thread_id": "conversation_hash|conversation_id",
            "author": "user_id|hashed_ip",
            "text": "content|text",
            "timestamp": "timestamp",
        },
        keep=("model", "language", "turn"),
        assistant_when=("role", "assistant"),
    ),
}
