"""Build a Humanual-format dataset from anyone's raw posts and replies.

Run it from the command line:

    humanlm data build --input dump.jsonl --out data/mine --llm openai:gpt-5-mini
    humanlm data build --input comments/ --layout reddit --out data/aita --fixed-persona "A Reddit user."

Pipeline: read items (`raw_formats`) -> find target replies and their contexts (`threads`) ->
filter users and split without leakage (`splits`) -> write ``{train,val,test}.parquet``, the
summary and the card (`output`) -> personas (`personas`) -> validate the result (`validate`).
Conversations with an assistant (the ``wildchat`` layout, or any build with
``end_examples=True``) also get one end row each: the whole conversation up to the assistant's last
turn, answered by the end signal, in the split of the conversation's last reply.
Everything before the personas is columnar or a single linear pass, so 250,000 replies build in
seconds (see ``benchmarks/build.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from humanlm.data.validate import validate_source
from humanlm.errors import ConfigError, DataError
from humanlm.files import check_out_outside_input, check_output_dir
from humanlm.ingest.layouts import LAYOUTS
from humanlm.ingest.output import HELD_SCHEMA, HUMANUAL_SCHEMA, write_built
from humanlm.ingest.raw_formats import Items, read_items
from humanlm.ingest.splits import DEFAULT_RATIOS, SPLIT_NAMES, SplitPlan, assign_splits
from humanlm.ingest.threads import Replies, build_replies
from humanlm.llm.limits import RetryPolicy
from humanlm.lock import holds_output_lock
from humanlm.states.ending import END_SIGNAL

if TYPE_CHECKING:
    from humanlm.enrich.personas import PersonaSummary

__all__ = ["BuildSummary", "run_build"]

logger = logging.getLogger(__name__)

# Role of a context message whose author is unknown; a placeholder, never a target user.
UNKNOWN_AUTHOR = "NA"
DROP_NOTES: dict[str, str] = {
    "missing_thread_id": "item without a thread id",
    "duplicate_item": "item id seen before (the first one is kept)",
    "empty_text": "reply with no text (or [deleted]/[removed])",
    "deleted_author": "reply by a deleted or unknown author",
    "no_timestamp": "reply without a readable timestamp",
    "too_long": "reply above --max-reply-chars / --max-reply-words",
    "no_context": "reply with nothing before it to answer (its post and parents are missing)",
    "user_too_few": "user below --min-replies-per-user",
    "user_too_many": "user above --max-replies-per-user",
    "unseen_user": "val/test reply of a user with no training reply",
}


@dataclass
class BuildSummary:
    """The outcome of `run_build`.

    Attributes:
        out_dir: the built folder.
        info: what ``build_summary.json`` holds (options, counts, persona outcome, stats).
        personas: the persona step's outcome, when an LLM wrote personas.
        validated_rows: rows checked by the final validation (all of them).
    """

    out_dir: Path
    info: dict[str, Any]
    personas: PersonaSummary | None = None
    validated_rows: int = 0

    def describe(self) -> str:
        """Human-readable lines: rows per split, what was left out and why, personas."""
        stats = self.info["stats"]
        lines = [f"built {self.out_dir}"]
        for name, split in stats["splits"].items():
            lines.append(
                f"  {name}: {split['rows']:,} rows, {split['users']:,} users, "
                f"{split['threads']:,} threads"
            )
        lines.append(f"  all: {stats['rows']:,} rows, {stats['users']:,} users")
        lines.append(
            f"items: read {self.info['items_read']:,}, kept {self.info['items_kept']:,}"
            + _reasons(self.info["items_dropped"])
        )
        ends = self.info.get("end_examples", 0)
        lines.append(
            f"replies: found {self.info['replies_found']:,}, written {stats['rows'] - ends:,}"
            + _reasons(self.info["replies_dropped"])
        )
        if self.info["options"].get("end_examples"):
            lines.append(
                f"end examples: {ends:,} added (conversations that end with the assistant's turn; "
                "reply: the end signal)"
            )
        used = set(self.info["items_dropped"]) | set(self.info["replies_dropped"])
        lines.extend(
            f"  {reason}: {DROP_NOTES[reason]}" for reason in sorted(used & DROP_NOTES.keys())
        )
        if self.personas is not None:
            lines.append(self.personas.describe())
        else:
            lines.append(f"personas: {self.info['personas']['source']}")
        if self.personas is not None and not self.personas.users:
            lines.append("not validated: no row has its persona yet")
        else:
            lines.append(f"validated: {self.validated_rows:,} rows, no problems")
        return "\n".join(lines)


@holds_output_lock("out_dir", command="data build")
def run_build(
    *,
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    layout: str = "generic",
    columns: Mapping[str, str] | None = None,
    keep_columns: Iterable[str] = (),
    context: str = "auto",
    split_by: str = "thread",
    ratios: tuple[float, float, float] = DEFAULT_RATIOS,
    seen_users: bool = True,
    min_replies: int = 1,
    max_replies: int | None = None,
    max_reply_chars: int | None = None,
    max_reply_words: int | None = None,
    end_examples: bool | None = None,
    hash_authors: bool = False,
    seed: int = 0,
    llm: str | None = None,
    fixed_persona: str | None = None,
    personas: bool = True,
    k: int = 20,
    concurrency: int = 8,
    api_key_env: str | None = None,
    persona_cache: str | Path | None = None,
    persona_retry: RetryPolicy | None = None,
    show_progress: bool = False,
) -> BuildSummary:
    """Read raw items, build reply rows, split them, add personas, write and validate.

    Example:
        >>> summary = run_build(inputs=["dump.jsonl"], out_dir="data/mine", fixed_persona="A user.")
        ... # doctest: +SKIP
        >>> print(summary.describe())  # doctest: +SKIP

    Supports JSON lines (also gzipped), JSON arrays, parquet and CSV inputs in the documented
    item format or a named layout (``docs/data_build.md``); contexts along parent chains or in
    thread order; temporal splits by thread or turn, or user-held-out splits; LLM, fixed or no
    personas. Refuses, before reading anything: no persona choice (an LLM, a fixed text or
    ``personas=False``), or two of them at once.

    Args:
        inputs: files or folders of items.
        out_dir: the output folder.
        layout, columns, keep_columns, hash_authors: how items are read (`read_items`).
        context: ``auto``, ``chain`` or ``thread`` (`build_replies`).
        split_by, ratios, seen_users, min_replies, max_replies, seed: `assign_splits`.
        max_reply_chars, max_reply_words: leave out longer replies.
        end_examples: add one end row per conversation whose last message is the assistant's
            (``None``: for layouts with assistant turns, i.e. ``wildchat``). Needs thread contexts.
        llm: persona model spec (``openai:MODEL[@URL]``, ``litellm:PROVIDER/MODEL``).
        fixed_persona: one persona text for every row instead of an LLM.
        personas: False writes an empty persona column.
        k, concurrency, api_key_env, persona_cache: the persona step (`run_personas`).
        persona_retry: retries and deadline per persona call (default: `run_personas`'s).
        show_progress: tqdm bars.

    Raises:
        ConfigError: a bad option combination.
        DataError: unreadable inputs, no rows left, or (a bug) output that fails validation.
        JudgeUnavailableError: the persona model refused the key or is unknown.
    """
    chosen = [
        name for name, on in (("llm", llm), ("fixed", fixed_persona), ("none", not personas)) if on
    ]
    if not chosen:
        raise ConfigError(
            "build needs a persona source: --llm SPEC (summarise each user's replies), "
            "--fixed-persona TEXT (one text for everyone) or --no-personas (empty personas)"
        )
    if len(chosen) > 1:
        raise ConfigError("choose one of --llm, --fixed-persona and --no-personas")
    if any(limit is not None and limit < 1 for limit in (max_reply_chars, max_reply_words)):
        raise ConfigError("--max-reply-chars / --max-reply-words must be >= 1")
    if end_examples and context == "chain":
        raise ConfigError(
            "end examples need conversations in time order: use --context thread or auto, "
            "or --no-end-examples"
        )
    check_output_dir(out_dir, what="data build --out")
    paths = [str(p) for p in inputs]
    check_out_outside_input(out_dir, paths, what="data build --out")
    items = read_items(
        paths, layout=layout, columns=columns, keep=keep_columns, hash_authors=hash_authors
    )
    if end_examples is None:
        end_examples = layout in LAYOUTS and LAYOUTS[layout].assistant_when is not None
    replies = build_replies(
        items,
        context=context,
        max_reply_chars=max_reply_chars,
        max_reply_words=max_reply_words,
        end_examples=end_examples,
    )
    real = replies.item[: replies.real]
    plan = assign_splits(
        users=[items.author[i] for i in real],
        threads=[items.thread_id[i] for i in real],
        times=[items.timestamp[i] for i in real],
        thread_starts=replies.thread_start[: replies.real],
        tiebreak=[items.item_id[i] for i in real],
        split_by=split_by,
        ratios=ratios,
        seen_users=seen_users,
        min_replies=min_replies,
        max_replies=max_replies,
        seed=seed,
    )
    # An end row goes wherever its conversation's last reply went (or is left out with it).
    plan.labels.extend(plan.labels[row] for row in replies.end_of[replies.real :])
    if all(label < 0 for label in plan.labels):
        raise DataError(
            f"no reply rows are left (items read {items.read:,}, candidate replies "
            f"{replies.real + sum(replies.dropped.values()):,}, left out "
            f"{dict(replies.dropped) | dict(plan.dropped)}); check the column mapping and filters"
        )
    options = {
        "layout": layout,
        "columns": dict(columns or {}),
        "context": context,
        "split_by": split_by,
        "ratios": "/".join(f"{r:g}" for r in ratios),
        "seen_users": seen_users and split_by != "user",
        "min_replies": min_replies,
        "max_replies": max_replies,
        "max_reply_chars": max_reply_chars,
        "max_reply_words": max_reply_words,
        "end_examples": end_examples,
        "hash_authors": hash_authors,
        "seed": seed,
    }
    source = {"llm": "pending", "fixed": "fixed", "none": "none"}[chosen[0]]
    info = _build_info(paths, options, items, replies, plan, persona_source=source)
    tables = _split_tables(items, replies, plan, persona=fixed_persona or "")
    if llm:
        # Until a row has its persona it is held back, never written as an ordinary split: a
        # build the persona model fails leaves nothing that `prepare` or `validate` accepts.
        held = _held_rows(tables)
        empty = {name: HUMANUAL_SCHEMA.empty_table() for name in SPLIT_NAMES}
        info["stats"] = write_built(out_dir, tables=empty, held=held, info=info)
    else:
        info["stats"] = write_built(out_dir, tables=tables, held=None, info=info)
    persona_summary = None
    if llm:
        # enrich reads the folder format of build; the persona step comes last, so import late.
        from humanlm.enrich.personas import run_personas

        persona_summary = run_personas(
            data_dir=out_dir,
            llm=llm,
            k=k,
            concurrency=concurrency,
            api_key_env=api_key_env,
            cache=persona_cache,
            retry=persona_retry,
            show_progress=show_progress,
        )
        info = persona_summary.info
    if persona_summary is not None and not persona_summary.users:
        return BuildSummary(out_dir=Path(out_dir), info=info, personas=persona_summary)
    report = validate_source(out_dir, dataset="generic")
    if not report.ok:  # our own output must always load; this would be a bug here
        raise DataError(f"the built data failed validation:\n{report.describe(max_problems=10)}")
    return BuildSummary(
        out_dir=Path(out_dir), info=info, personas=persona_summary, validated_rows=report.rows
    )


def _build_info(
    paths: list[str],
    options: dict[str, Any],
    items: Items,
    replies: Replies,
    plan: SplitPlan,
    *,
    persona_source: str,
) -> dict[str, Any]:
    """What ``build_summary.json`` records about the build (the stats are added on writing)."""
    return {
        "inputs": paths,
        "options": options,
        "context_mode": replies.mode,
        "items_read": items.read,
        "items_kept": len(items),
        "items_dropped": dict(items.dropped),
        "replies_found": replies.real + sum(replies.dropped.values()),
        "end_examples": sum(
            1 for row in range(replies.real, len(replies)) if plan.labels[row] >= 0
        ),
        "replies_dropped": {**replies.dropped, **plan.dropped},
        "broken_chains": replies.broken_chains,
        "parent_cycles_cut": replies.cycles,
        "personas": {"source": persona_source},
    }


def _held_rows(tables: Iterable[tuple[str, pa.Table]]) -> pa.Table:
    """Every split's rows in one table with their ``split`` column (the held-rows layout)."""
    parts = [
        table.append_column("split", pa.repeat(pa.scalar(name), table.num_rows))
        for name, table in tables
    ]
    return pa.concat_tables(parts).cast(HELD_SCHEMA)


def _split_tables(
    items: Items, replies: Replies, plan: SplitPlan, *, persona: str
) -> Iterator[tuple[str, pa.Table]]:
    """The Humanual table of each split in turn, rows ordered by (timestamp, post_id, item id).

    Contexts are materialised one split at a time, straight in output order, so the largest
    allocation is one split's prompts (a deep thread repeats its messages in every row).
    """
    if len(replies.flat) >= 2**31:
        raise DataError(f"{len(replies.flat):,} context messages do not fit; split the input")
    roles = pa.array([a or UNKNOWN_AUTHOR for a in items.author], pa.string())
    texts = pa.array(items.text, pa.string())
    meta = pa.array(items.metadata, pa.string())
    row_is_end, row_user, row_meta = _end_columns(items, replies)
    messages = pa.StructArray.from_arrays(
        [roles, texts, meta], names=["role", "content", "metadata"]
    )
    flat = (
        np.frombuffer(replies.flat, dtype=np.int64) if len(replies.flat) else np.zeros(0, np.int64)
    )
    offsets = np.frombuffer(replies.offsets, dtype=np.int64)
    item = np.asarray(replies.item, dtype=np.int64)
    keys = pa.table(
        {
            "timestamp": pa.array(items.timestamp, pa.int64()).take(pa.array(item)),
            "post_id": pa.array(items.thread_id, pa.string()).take(pa.array(item)),
            "item_id": pa.array(items.item_id, pa.string()).take(pa.array(item)),
        }
    )
    order = pc.sort_indices(
        keys, sort_keys=[(c, "ascending") for c in keys.column_names]
    ).to_numpy()
    labels = np.asarray(plan.labels, dtype=np.int8)[order]
    for k, name in enumerate(SPLIT_NAMES):
        rows = order[labels == k]
        starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
        ends = np.cumsum(lengths)
        # Row j's context indices are flat[starts[j] : starts[j] + lengths[j]], laid end to end.
        picks = np.arange(ends[-1] if len(ends) else 0) + np.repeat(
            starts - (ends - lengths), lengths
        )
        prompt = pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], ends]).astype(np.int32)),
            messages.take(pa.array(flat[picks])),
        )
        taken, picked = pa.array(item[rows]), pa.array(rows)
        is_end = row_is_end.take(picked)
        yield (
            name,
            pa.table(
                {
                    "prompt": prompt,
                    "completion": pc.if_else(is_end, END_SIGNAL, texts.take(taken)),
                    "user_id": pa.array(items.author, pa.string()).take(row_user.take(picked)),
                    "post_id": pa.array(items.thread_id, pa.string()).take(taken),
                    "turn_id": pa.array(lengths),
                    "timestamp": pa.array(items.timestamp, pa.int64()).take(taken),
                    "metadata": pc.coalesce(row_meta.take(picked), meta.take(taken)),
                    "persona": pa.repeat(pa.scalar(persona, pa.string()), len(rows)),
                },
                schema=HUMANUAL_SCHEMA,
            ),
        )


def _end_columns(items: Items, replies: Replies) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Per row: whether it is an end row, the item whose author is its user, its own metadata.

    A real row's user is its reply's author and its metadata is the reply's (null here). An end
    row's item is the assistant's last turn; its user is the author of the conversation's last
    reply, and its metadata marks it (``end_of_conversation``) and names that assistant turn.
    """
    user = list(replies.item)
    metadata: list[str | None] = [None] * len(replies)
    for row in range(replies.real, len(replies)):
        last = replies.end_of[row]
        user[row] = replies.item[last]
        metadata[row] = json.dumps(
            {
                "end_of_conversation": True,
                "after_item_id": items.item_id[replies.item[row]],
                "author": items.author[user[row]],
            },
            ensure_ascii=False,
        )
    is_end = pa.array([e >= 0 for e in replies.end_of], pa.bool_())
    return is_end, pa.array(user, pa.int64()), pa.array(metadata, pa.string())


def _reasons(counts: Mapping[str, int]) -> str:
    if not counts:
        return ""
    return "; left out " + ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.items()))
