"""Per-user filters and deterministic train/val/test splits of reply rows.

Three ways to split (``--split-by``):

- ``thread`` (default): threads sorted by their earliest timestamp (ties by thread id); the
  first 90% of threads go to train, the next 2% to val, the last 8% to test. A thread's rows
  never span two splits.
- ``turn``: replies sorted by their own timestamp (ties by thread id, then item id) and cut the
  same way; a conversation's later turns can land in val/test while its earlier turns train.
- ``user``: users ordered by a seeded hash of their id and cut the same way; every row of a
  user is in one split (a user-held-out test).

With ``seen_users`` (the default for ``thread`` and ``turn``), val/test rows of users without a
training row are left out. Nothing here draws random numbers: the same rows give the same split.

Example:
    >>> plan = assign_splits(users=u, threads=t, times=ts, thread_starts=s, tiebreak=ids)
    ... # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from humanlm.errors import ConfigError

__all__ = [
    "DEFAULT_RATIOS",
    "SPLIT_BY",
    "SPLIT_NAMES",
    "SplitPlan",
    "assign_splits",
    "parse_ratios",
]

logger = logging.getLogger(__name__)

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
SPLIT_BY: tuple[str, ...] = ("thread", "turn", "user")
DEFAULT_RATIOS: tuple[float, float, float] = (0.90, 0.02, 0.08)
DROPPED = -1


@dataclass
class SplitPlan:
    """The split of every row: an index into `SPLIT_NAMES`, or -1 when the row is left out.

    Attributes:
        labels: one label per row.
        dropped: rows left out, by reason (``user_too_few``, ``user_too_many``, ``unseen_user``).
    """

    labels: list[int]
    dropped: Counter[str] = field(default_factory=Counter)

    def rows(self, split: str) -> list[int]:
        """Row indices of one split, in row order."""
        label = SPLIT_NAMES.index(split)
        return [i for i, lab in enumerate(self.labels) if lab == label]


def parse_ratios(text: str) -> tuple[float, float, float]:
    """Parse ``90/2/8`` or ``0.9,0.02,0.08`` into three fractions that sum to 1.

    Raises:
        ConfigError: not three non-negative numbers with a positive train share.
    """
    parts = [p for p in re.split(r"[/,:]", text.strip()) if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3 or any(v < 0 for v in values) or values[0] <= 0:
        raise ConfigError(
            f"split ratios {text!r}: expected three non-negative numbers TRAIN/VAL/TEST "
            "with TRAIN > 0, such as 90/2/8"
        )
    total = sum(values)
    return values[0] / total, values[1] / total, values[2] / total


def assign_splits(
    *,
    users: Sequence[str],
    threads: Sequence[str],
    times: Sequence[int],
    thread_starts: Sequence[int],
    tiebreak: Sequence[str],
    split_by: str = "thread",
    ratios: tuple[float, float, float] = DEFAULT_RATIOS,
    seen_users: bool = True,
    min_replies: int = 1,
    max_replies: int | None = None,
    seed: int = 0,
) -> SplitPlan:
    """Filter users by reply count, then split rows as ``split_by`` says.

    Args:
        users, threads, times, thread_starts, tiebreak: per row: the author, the thread id, the
            reply timestamp, the thread's earliest timestamp and a unique id (the item id).
        split_by: ``thread``, ``turn`` or ``user``.
        ratios: train/val/test fractions.
        seen_users: leave out val/test rows of users with no training row (ignored for
            ``user``, where val/test users are unseen on purpose).
        min_replies: users with fewer rows are left out.
        max_replies: users with more rows are left out (``None``: no upper limit).
        seed: varies the user order of ``split_by="user"``.

    Raises:
        ConfigError: unknown ``split_by`` or bad limits.
    """
    if split_by not in SPLIT_BY:
        raise ConfigError(f"unknown split {split_by!r}; use one of {', '.join(SPLIT_BY)}")
    if min_replies < 1 or (max_replies is not None and max_replies < min_replies):
        raise ConfigError(
            "replies per user: need 1 <= min-replies-per-user <= max-replies-per-user"
        )
    counts = Counter(users)
    labels = [0] * len(users)
    plan = SplitPlan(labels=labels)
    for i, user in enumerate(users):
        if counts[user] < min_replies:
            labels[i] = DROPPED
            plan.dropped["user_too_few"] += 1
        elif max_replies is not None and counts[user] > max_replies:
            labels[i] = DROPPED
            plan.dropped["user_too_many"] += 1
    kept = [i for i, lab in enumerate(labels) if lab != DROPPED]
    if split_by == "thread":
        start = {threads[i]: thread_starts[i] for i in kept}
        _label_groups(
            labels,
            kept,
            [threads[i] for i in kept],
            sorted(start, key=lambda t: (start[t], t)),
            ratios,
        )
    elif split_by == "turn":
        order = sorted(kept, key=lambda i: (times[i], threads[i], tiebreak[i]))
        cut_train, cut_val = _cuts(len(order), ratios)
        for position, i in enumerate(order):
            labels[i] = 0 if position < cut_train else 1 if position < cut_val else 2
    else:
        hashed = {users[i]: _user_hash(users[i], seed) for i in kept}
        _label_groups(
            labels,
            kept,
            [users[i] for i in kept],
            sorted(hashed, key=lambda u: (hashed[u], u)),
            ratios,
        )
    if seen_users and split_by != "user":
        trained = {users[i] for i, lab in enumerate(labels) if lab == 0}
        for i, lab in enumerate(labels):
            if lab > 0 and users[i] not in trained:
                labels[i] = DROPPED
                plan.dropped["unseen_user"] += 1
    logger.info(
        "split by %s: %s rows; left out %s",
        split_by,
        "/".join(str(labels.count(k)) for k in range(3)),
        dict(plan.dropped) or "none",
    )
    return plan


def _cuts(n: int, ratios: tuple[float, float, float]) -> tuple[int, int]:
    """Boundaries of train and val among ``n`` ordered units (round half up, never random)."""
    cut_train = int(n * ratios[0] + 0.5)
    cut_val = int(n * (ratios[0] + ratios[1]) + 0.5)
    return cut_train, max(cut_train, min(n, cut_val))


def _label_groups(
    labels: list[int], rows: list[int], keys: list[str], ordered: list[str], ratios: tuple
) -> None:
    """Give every row the split of its group (thread or user), groups cut in ``ordered`` order."""
    cut_train, cut_val = _cuts(len(ordered), ratios)
    group_label = {
        g: 0 if k < cut_train else 1 if k < cut_val else 2 for k, g in enumerate(ordered)
    }
    for i, key in zip(rows, keys, strict=True):
        labels[i] = group_label[key]


def _user_hash(user: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{user}".encode()).hexdigest()
