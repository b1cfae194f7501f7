"""The Humanual datasets we know: ids, hub names and per-dataset facts, in one plain dict.

Example:
    >>> from humanlm.data.sources import resolve_dataset, DATASETS
    >>> resolve_dataset("opinion")
    'reddit'
    >>> DATASETS["reddit"]["hub_repo"]
    'snap-stanford/humanual-opinion'
"""

from __future__ import annotations

from typing import Any

from humanlm.errors import DataError

__all__ = ["ALIASES", "DATASETS", "DATASET_IDS", "resolve_dataset"]

# Facts of the Humanual datasets (the paper's benchmark). `eval_rows`: evaluation uses the
# first N test rows.
# `generic` is our own schema-compatible fallback for data from other platforms.
DATASETS: dict[str, dict[str, Any]] = {
    "reddit": {
        "hub_name": "opinion",
        "hub_repo": "snap-stanford/humanual-opinion",
        "max_prompt_tokens": 5120,
        "eval_rows": 5000,
    },
    "amazon": {
        "hub_name": "book",
        "hub_repo": "snap-stanford/humanual-book",
        "max_prompt_tokens": 7168,
        "eval_rows": 2000,
    },
    "medium": {
        "hub_name": "politics",
        "hub_repo": "snap-stanford/humanual-politics",
        "max_prompt_tokens": 7168,
        "eval_rows": 2000,
    },
    "youtube": {
        "hub_name": "news",
        "hub_repo": "snap-stanford/humanual-news",
        "max_prompt_tokens": 5120,
        "eval_rows": 2000,
    },
    "wildchat": {
        "hub_name": "chat",
        "hub_repo": "snap-stanford/humanual-chat",
        "max_prompt_tokens": 7168,
        "eval_rows": 2000,
    },
    "enron": {
        "hub_name": "email",
        "hub_repo": "snap-stanford/humanual-email",
        "max_prompt_tokens": 5120,
        "eval_rows": 2000,
    },
    "generic": {
        "hub_name": None,
        "hub_repo": None,
        "max_prompt_tokens": 7168,
        "eval_rows": 2000,
    },
}

DATASET_IDS: tuple[str, ...] = tuple(DATASETS)

# Hub names (and the `dataset` column of the sample fixture) map onto our ids.
ALIASES: dict[str, str] = {
    facts["hub_name"]: dataset_id
    for dataset_id, facts in DATASETS.items()
    if facts["hub_name"] is not None
}


def resolve_dataset(name: str, *, file: str | None = None, row: int | None = None) -> str:
    """Return our dataset id for ``name`` (an id or a hub name, any case).

    Args:
        name: ``reddit`` ... ``generic``, or a hub name such as ``opinion``.
        file: the file the name came from, for the error message.
        row: the row the name came from (its ``dataset`` column), for the error message.

    Raises:
        DataError: the name is neither an id nor a hub name; the message lists the known ids.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key in DATASETS:
        return key
    if key in ALIASES:
        return ALIASES[key]
    known = ", ".join(DATASET_IDS)
    aliases = ", ".join(f"{alias}->{target}" for alias, target in ALIASES.items())
    raise DataError(
        f"unknown dataset {name!r}; known ids: {known} (hub names: {aliases})",
        file=file,
        row=row,
        field="dataset" if row is not None else None,
    )
