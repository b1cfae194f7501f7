"""Prepare Humanual-format data into parquet files that training and evaluation read.

Run it from the command line:

    humanlm data prepare --input snap-stanford/humanual-opinion --dataset reddit --out data/reddit

Each output row is one example: the rendered context messages (target user named HUMAN), the
rendered persona, the ground-truth reply and ids. `load_prepared` reads such a file back.

End examples teach a simulator to end a conversation: their context is a whole conversation up
to and including the assistant's last turn, and their real reply is the end signal
(``<|endconversation|>``): the user wrote nothing more. ``end_examples`` decides (default: on for
``wildchat``, off for other datasets):

- rows whose reply already is the end signal are kept (``data build`` writes such rows for chat
  dumps and marks them ``end_of_conversation`` in their metadata: those are kept by default for
  any dataset); with end examples off they are dropped;
- one end example is added per conversation: the rows of one conversation share ``dataset``,
  ``post_id`` (the conversation id) and ``user_id``, and its last turn is the row with the
  highest ``turn_id``. The added example's context is that row's context, the user's real reply
  and the assistant's answer to it, and it goes into the same split as that row.

Users never seen: ``holdout_users`` (K users, or a fraction of them, drawn with ``seed``) moves
every row of the drawn users, from every split, into a ``test_unseen`` split; the other users'
rows stay in their splits. No user of ``test_unseen`` is then in ``train``, ``val`` or ``test``,
so an evaluation on it measures a simulator on people it was never trained on (Humanual's own
splits are by time: each test user is also a training user).

The assistant's answer to the user's last reply is needed and is never made up. Humanual-Chat
rows stop at the user's reply, so they do not hold it: a row holds it only as
``metadata.assistant_reply`` (the assistant's real answer to the row's reply). A conversation
whose last row lacks it gets no end example, and is counted (``end_no_answer``). A conversation
that already has an end row gets no second one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from humanlm.data.authors import learn_author_map
from humanlm.data.load import EXTENSIONS, SPLITS, SplitSource, find_splits, iter_raw_rows
from humanlm.data.persona import (
    MIN_PERSONA_ITEMS,
    count_persona_items,
    drop_persona_fields,
    render_persona,
)
from humanlm.data.render import render_context
from humanlm.data.schema import SourceRow, normalize_row
from humanlm.data.sources import resolve_dataset
from humanlm.errors import DataError
from humanlm.files import atomic_path, check_out_outside_input, check_output_dir, write_json
from humanlm.states.ending import END_SIGNAL, is_end_signal
from humanlm.states.template import HUMAN

__all__ = [
    "DROP_REASONS",
    "EndPlan",
    "PREPARED_COLUMNS",
    "PREPARED_SCHEMA",
    "PrepareSummary",
    "SplitSummary",
    "UNSEEN_SPLIT",
    "build_example_id",
    "load_prepared",
    "parse_holdout_users",
    "run_prepare",
]

logger = logging.getLogger(__name__)

_MESSAGE = pa.struct([("role", pa.string()), ("name", pa.string()), ("content", pa.string())])
PREPARED_SCHEMA = pa.schema(
    [
        ("example_id", pa.string()),
        ("data_source", pa.string()),
        ("user_id", pa.string()),
        ("post_id", pa.string()),
        ("turn_id", pa.int64()),
        ("timestamp", pa.int64()),
        ("messages", pa.list_(_MESSAGE)),
        ("persona", pa.string()),
        ("ground_truth", pa.string()),
        ("trace", pa.string()),
        ("states", pa.string()),
    ]
)
PREPARED_COLUMNS: tuple[str, ...] = tuple(PREPARED_SCHEMA.names)

DROP_REASONS: dict[str, str] = {
    "duplicate": "same dataset, post, user, turn and reply as an earlier row",
    "persona_filter": "structured persona with fewer list items than the minimum",
    "limit": "beyond the row limit",
    "end_example": "an end-of-conversation example, left out (end examples are off)",
}

# Datasets whose rows are conversations with an assistant, where a user may end the chat.
END_EXAMPLE_DATASETS = ("wildchat",)
# The reply-metadata field holding the assistant's real answer to the row's reply.
ASSISTANT_REPLY_FIELD = "assistant_reply"
# The reply-metadata flag of end rows written by `humanlm data build`.
BUILT_END_FLAG = "end_of_conversation"

_WRITE_BATCH_ROWS = 512
# Which source each split file of an output folder was prepared from.
SOURCES_FILE = "prepare_sources.json"
# Rows `humanlm data build` holds back until they have a persona (never a split).
HELD_ROWS_FILE = "persona_failed.parquet"
# The split of held-out users: every row of users that no other split holds.
UNSEEN_SPLIT = "test_unseen"
# The dataset of a row without a ``dataset`` column under ``auto`` (as ``data validate`` reads it).
AUTO_FALLBACK = "generic"
# Where ``eval_only`` puts every row: the split ``humanlm eval`` reads by default.
EVAL_ONLY_SPLIT = "test"


@dataclass
class SplitSummary:
    """What happened to one split: rows read, written, and dropped per reason."""

    split: str
    path: Path
    read: int = 0
    written: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    end_added: int = 0


@dataclass
class PrepareSummary:
    """The outcome of `run_prepare`, one `SplitSummary` per written file."""

    source: str
    dataset: str
    out_dir: Path
    splits: list[SplitSummary]
    min_persona_items: int = MIN_PERSONA_ITEMS
    ends: EndPlan | None = None
    users: int = 0
    held_out: int = 0

    @property
    def read(self) -> int:
        return sum(s.read for s in self.splits)

    @property
    def written(self) -> int:
        return sum(s.written for s in self.splits)

    @property
    def end_added(self) -> int:
        return sum(s.end_added for s in self.splits)

    @property
    def dropped(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for s in self.splits:
            total.update(s.dropped)
        return total

    def describe(self) -> str:
        """Human-readable lines: per split and in total, rows read, written, dropped and why."""
        lines = [f"prepared {self.dataset} data from {self.source} into {self.out_dir}"]
        for s in self.splits:
            lines.append(
                f"  {s.split}: read {s.read}, written {s.written}{_added(s.end_added)}, "
                f"dropped {sum(s.dropped.values())}{_reasons(s.dropped)} -> {s.path}"
            )
        dropped = self.dropped
        lines.append(
            f"total: read {self.read}, written {self.written}{_added(self.end_added)}, "
            f"dropped {sum(dropped.values())}{_reasons(dropped)}"
        )
        if self.ends is not None and self.ends.conversations:
            lines.append(self.ends.describe(added=self.end_added))
        if self.held_out:
            lines.append(
                f"users never seen: {self.held_out} of {self.users} users held out; all their "
                f"rows are in {self.splits[-1].split}, no other split has them"
            )
        for reason in sorted(dropped):
            note = DROP_REASONS[reason]
            if reason == "persona_filter":
                note += f" ({self.min_persona_items})"
            lines.append(f"  {reason}: {note}")
        return "\n".join(lines)


@dataclass
class EndPlan:
    """Which conversations get an added end example, learned from every row before writing.

    Attributes:
        last_turns: ``(file, row index)`` of each conversation's last row -> the assistant's
            answer to its reply (``None`` when the data do not hold it, or the conversation
            already has an end row).
        conversations: conversations with end examples on.
        already_ended: conversations that already have an end row.
        no_answer: conversations whose last row holds no assistant answer.
    """

    last_turns: dict[tuple[str, int], str | None] = field(default_factory=dict)
    conversations: int = 0
    already_ended: int = 0
    no_answer: int = 0

    def describe(self, *, added: int) -> str:
        """One line: end examples added, and why the other conversations got none."""
        return (
            f"end examples: {added} added for {self.conversations} conversations; "
            f"{self.already_ended} already end with an end row; {self.no_answer} end with the "
            f"user's reply, the assistant's answer to it not in the data "
            f"(metadata.{ASSISTANT_REPLY_FIELD}), so they get none"
        )


def run_prepare(
    *,
    source: str | Path,
    dataset: str | None,
    out_dir: str | Path,
    split: str | None = None,
    limit: int | None = None,
    persona_dropout: tuple[float, float] | None = None,
    seed: int = 0,
    min_persona_items: int = MIN_PERSONA_ITEMS,
    end_examples: bool | None = None,
    holdout_users: int | float | None = None,
    eval_only: bool = False,
    show_progress: bool = False,
) -> PrepareSummary:
    """Validate, render and write a source as ``out_dir/<split>.parquet``, one file per split.

    Example:
        >>> summary = run_prepare(source="rows.jsonl", dataset="reddit", out_dir="out")  # doctest: +SKIP
        >>> print(summary.describe())  # doctest: +SKIP

    Supports a hub repo (every split it has), a local parquet/JSONL/JSON file (written as
    ``split``, default ``train``; with ``eval_only``, ``test``) and a folder of
    ``train``/``val``/``test`` files. Every row of
    every split is validated before anything is written, and all files are renamed into place
    only at the end: on any error no partial file remains and existing files stay as they were.

    Args:
        source: a file, a folder, a hub repo id, or a dataset id / hub name (its hub repo).
        dataset: our dataset id or a hub name; ``None`` or ``"auto"`` reads each row's
            ``dataset`` column, ``generic`` for a row without one.
        out_dir: output folder.
        split: the split a single file holds; for a folder or the hub, only this split.
        limit: write at most this many rows per split (the rest are counted as ``limit``).
        persona_dropout: ``(field_p, item_p)`` for `drop_persona_fields`; output files are then
            named ``<split>_dropout.parquet``.
        seed: seed of the persona dropout and of the users held out.
        min_persona_items: the persona filter: structured personas with fewer list items are
            dropped (0 disables it). Plain-text personas are never filtered.
        end_examples: keep rows whose real reply is the end signal and add one end example per
            conversation whose last row holds the assistant's answer (``None``: only for
            ``wildchat``, plus the end rows ``data build`` wrote). See the module docstring.
        holdout_users: hold out this many users (an int >= 1) or this fraction of them (a
            float in (0, 1)): all their rows go to ``test_unseen`` (see the module docstring).
            Needs every split of a folder or hub source (no ``split``).
        eval_only: an evaluation-only dataset: every row of every split goes to ``test`` (the
            split ``humanlm eval`` reads); not with ``split`` or ``holdout_users``.
        show_progress: show tqdm bars over rows.

    Returns:
        Rows read, written and dropped (by reason), per split.

    Raises:
        DataError: a bad source or row (naming file, row and field); ``holdout_users`` with
            ``split`` on a folder or hub source, or asking for every user.
        ValueError: a negative limit, a dropout probability outside [0, 1], or a
            ``holdout_users`` that is neither a count >= 1 nor a fraction in (0, 1).
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if persona_dropout is not None and not all(0.0 <= p <= 1.0 for p in persona_dropout):
        raise ValueError(f"persona dropout probabilities must be in [0, 1], got {persona_dropout}")
    _check_holdout(holdout_users)
    if holdout_users is not None and split is not None and not Path(source).is_file():
        raise DataError(
            "--holdout-users draws from every split, so that no split keeps a held-out user; "
            "drop --split",
            file=str(source),
        )
    if eval_only and (split is not None or holdout_users is not None):
        raise DataError(
            "--eval-only puts every row in test; drop --split and --holdout-users",
            file=str(source),
        )
    dataset_id = None if dataset in (None, "auto") else resolve_dataset(str(dataset))
    if Path(source).name == HELD_ROWS_FILE:
        raise DataError(
            "these rows have no persona yet; run `humanlm data personas` on their folder first",
            file=str(source),
        )
    splits = find_splits(source, split=split)
    out = check_output_dir(out_dir, what="prepare --out")
    dropout = persona_dropout is not None
    split_names = [
        _output_name(EVAL_ONLY_SPLIT if eval_only else s.split, dropout=dropout) for s in splits
    ]
    unseen_name = _output_name(UNSEEN_SPLIT, dropout=dropout)
    names = list(dict.fromkeys(split_names))  # eval_only: one name for every split
    names += [unseen_name] if holdout_users is not None else []
    _refuse_out_at_input(out, source, names)
    _refuse_stale_splits(out, source, names)

    # Pass 1: validate everything and learn who wrote what, before any file is touched.
    read_counts: Counter[tuple[str, str]] = Counter()  # (split, user) -> rows
    conversations: dict[tuple[str, str, str], _Conversation] = {}
    rows = _checked_rows(splits, dataset_id, read_counts, show_progress)
    author_map = learn_author_map(_noting_conversations(rows, conversations, end_examples))
    ends = _plan_ends(conversations)
    if not sum(read_counts.values()):
        raise DataError(f"no rows to prepare{_held_hint(source)}", file=str(source))
    users = sorted({user for _, user in read_counts})
    held_out = _draw_held_out(users, holdout_users, seed) if holdout_users is not None else set()

    outputs: list[_Output] = []
    with contextlib.ExitStack() as stack:

        def open_output(name: str, read: int) -> _Output:
            summary = SplitSummary(split=name, path=out / f"{name}.parquet", read=read)
            tmp = stack.enter_context(atomic_path(summary.path))
            output = _Output(summary, stack.enter_context(pq.ParquetWriter(tmp, PREPARED_SCHEMA)))
            outputs.append(output)
            return output

        unseen = None
        if holdout_users is not None:
            held_rows = sum(n for (_, user), n in read_counts.items() if user in held_out)
            unseen = open_output(unseen_name, held_rows)
        by_name: dict[str, _Output] = {}  # eval_only writes every split into one output
        for source_split, name in zip(splits, split_names, strict=True):
            counts = [
                (user, n) for (sp, user), n in read_counts.items() if sp == source_split.split
            ]
            kept = sum(n for user, n in counts if user not in held_out)
            if name in by_name:
                by_name[name].summary.read += kept
            else:
                by_name[name] = open_output(name, kept)
            _write_split(
                source_split,
                by_name[name],
                rows=sum(n for _, n in counts),
                unseen=unseen,
                held_out=held_out,
                dataset=dataset_id,
                author_map=author_map,
                limit=limit,
                persona_dropout=persona_dropout,
                seed=seed,
                min_persona_items=min_persona_items,
                end_examples=end_examples,
                ends=ends,
                show_progress=show_progress,
            )
        for output in outputs:
            output.finish()
    _record_sources(out, source, names)
    # The held-out users' split comes last, after the splits it was drawn from.
    summaries = [o.summary for o in outputs if o is not unseen]
    summaries += [unseen.summary] if unseen is not None else []
    result = PrepareSummary(
        source=str(source),
        dataset=dataset_id or "auto",
        out_dir=out,
        splits=summaries,
        min_persona_items=min_persona_items,
        ends=ends,
        users=len(users),
        held_out=len(held_out),
    )
    logger.info("prepared %d of %d rows into %s", result.written, result.read, out)
    if ends.conversations:
        logger.info(ends.describe(added=result.end_added))
    return result


def parse_holdout_users(text: str) -> int | float:
    """``K`` (a whole number: that many users) or ``FRACTION`` (in (0, 1): that share of them).

    Raises:
        ValueError: anything else, with a message naming the two forms.
    """
    value: int | float
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"expected a number of users (K >= 1) or a fraction in (0, 1), got {text!r}"
            ) from None
    _check_holdout(value)
    return value


def _check_holdout(value: int | float | None) -> None:
    if value is None:
        return
    is_count = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    is_fraction = isinstance(value, float) and 0.0 < value < 1.0
    if not (is_count or is_fraction):
        raise ValueError(
            f"holdout users must be a number of users (K >= 1) or a fraction in (0, 1), "
            f"got {value!r}"
        )


def _draw_held_out(users: list[str], holdout: int | float, seed: int) -> set[str]:
    """The users whose rows all go to ``test_unseen``: a seeded draw from the sorted user ids.

    Raises:
        DataError: the draw would take every user (no user left to train on).
    """
    count = holdout if isinstance(holdout, int) else max(1, round(holdout * len(users)))
    if count >= len(users):
        raise DataError(
            f"--holdout-users {holdout} would hold out {count} of the {len(users)} users, "
            "leaving none to train on; hold out fewer"
        )
    return set(random.Random(seed).sample(users, count))


def load_prepared(path: str | Path) -> list[dict[str, Any]]:
    """Read a prepared parquet file: one dict per example with the `PREPARED_COLUMNS`.

    ``messages`` is a list of ``{role, name, content}``; ``timestamp`` may be None; ``trace`` and
    ``states`` (a JSON object as text) are "" when absent.

    Raises:
        DataError: the file is missing, not parquet, or lacks prepared columns.
    """
    return read_prepared_table(path).to_pylist()


def read_prepared_table(path: str | Path) -> pa.Table:
    """Read a prepared parquet file as an Arrow table, checking it has the prepared columns.

    Raises:
        DataError: the file is missing, not parquet, or lacks prepared columns.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError("no such prepared file; run `humanlm data prepare` first", file=str(file))
    try:
        table = pq.read_table(file)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"not a readable parquet file ({err})", file=str(file)) from None
    missing = [c for c in PREPARED_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(
            f"not a prepared file: missing columns {', '.join(missing)}; "
            "run `humanlm data prepare` to build one",
            file=str(file),
        )
    return table


def build_example_id(*, dataset: str, post_id: str, user_id: str, turn_id: int, reply: str) -> str:
    """A stable id: the same row gives the same id in every run (``<dataset>-<16 hex>``)."""
    reply_digest = hashlib.sha256(reply.encode("utf-8")).hexdigest()
    key = json.dumps([dataset, post_id, user_id, turn_id, reply_digest])
    return f"{dataset}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}"


def _iter_rows(source: SplitSource, *, dataset: str | None) -> Iterator[SourceRow]:
    """The validated rows of one split; with no dataset (``auto``) a row without a ``dataset``
    column is ``generic``, as ``humanlm data validate`` reads it."""
    for index, raw in iter_raw_rows(source):
        own = (
            dataset
            if dataset is not None or raw.get("dataset") not in (None, "")
            else AUTO_FALLBACK
        )
        yield normalize_row(raw, file=source.name, row=index, dataset=own)


def _checked_rows(
    splits: list[SplitSource],
    dataset: str | None,
    counts: Counter[tuple[str, str]],
    show_progress: bool,
) -> Iterator[SourceRow]:
    for source_split in splits:
        rows = _iter_rows(source_split, dataset=dataset)
        bar = tqdm(
            rows,
            total=source_split.num_rows,
            desc=f"checking {source_split.split}",
            unit="row",
            disable=not show_progress,
        )
        for row in bar:
            counts[(source_split.split, row.user_id)] += 1
            yield row


@dataclass
class _Conversation:
    """What pass 1 learns of one conversation: its last row so far, and whether it has ended."""

    turn_id: int
    file: str
    index: int
    answer: str | None
    ended: bool = False


def _adds_ends(row: SourceRow, end_examples: bool | None) -> bool:
    """Whether end examples are on for ``row``'s dataset."""
    return row.dataset in END_EXAMPLE_DATASETS if end_examples is None else end_examples


def _keeps_end_row(row: SourceRow, end_examples: bool | None) -> bool:
    """Whether an end row (reply: the end signal) is kept: on, or written by `data build`."""
    if end_examples is None and row.metadata.get(BUILT_END_FLAG) is True:
        return True
    return _adds_ends(row, end_examples)


def _noting_conversations(
    rows: Iterator[SourceRow],
    conversations: dict[tuple[str, str, str], _Conversation],
    end_examples: bool | None,
) -> Iterator[SourceRow]:
    """Pass ``rows`` through, noting each conversation's last row (end examples on only)."""
    for row in rows:
        if _adds_ends(row, end_examples):
            key = (row.dataset, row.post_id, row.user_id)
            answer = row.metadata.get(ASSISTANT_REPLY_FIELD)
            answer = answer if isinstance(answer, str) and answer.strip() else None
            known = conversations.get(key)
            ended = is_end_signal(row.completion) or (known is not None and known.ended)
            if known is None or row.turn_id >= known.turn_id:
                known = conversations[key] = _Conversation(row.turn_id, row.file, row.index, answer)
            known.ended = ended
        yield row


def _plan_ends(conversations: dict[tuple[str, str, str], _Conversation]) -> EndPlan:
    plan = EndPlan(conversations=len(conversations))
    for conversation in conversations.values():
        if conversation.ended:
            plan.already_ended += 1
        elif conversation.answer is None:
            plan.no_answer += 1
        else:
            plan.last_turns[(conversation.file, conversation.index)] = conversation.answer
    return plan


def _end_example(row: SourceRow, answer: str, example: dict[str, Any]) -> dict[str, Any]:
    """The end example after ``row``: its context, the user's reply, the assistant's answer.

    ``example`` is ``row`` as prepared; the end example keeps its persona, ids and timestamp.
    """
    messages = [
        *example["messages"],
        {"role": "user", "name": HUMAN, "content": row.completion},
        {"role": "assistant", "name": "assistant", "content": answer},
    ]
    turn_id = row.turn_id + 2
    return {
        **example,
        "example_id": build_example_id(
            dataset=row.dataset,
            post_id=row.post_id,
            user_id=row.user_id,
            turn_id=turn_id,
            reply=END_SIGNAL,
        ),
        "turn_id": turn_id,
        "messages": messages,
        "ground_truth": END_SIGNAL,
        "trace": "",
        "states": "",
    }


class _Output:
    """One output file being written: its summary, the example ids in it, rows not yet written."""

    def __init__(self, summary: SplitSummary, writer: pq.ParquetWriter) -> None:
        self.summary = summary
        self.ids: set[str] = set()
        self._writer = writer
        self._batch: list[dict[str, Any]] = []

    def is_full(self, limit: int | None) -> bool:
        return limit is not None and self.summary.written >= limit

    def add(self, example: dict[str, Any]) -> None:
        self.ids.add(example["example_id"])
        self._batch.append(example)
        self.summary.written += 1
        if len(self._batch) >= _WRITE_BATCH_ROWS:
            self._flush()

    def finish(self) -> None:
        """Write what is left and count the rows never reached as dropped by the limit."""
        self._flush()
        summary = self.summary
        handled = summary.written - summary.end_added + sum(summary.dropped.values())
        if summary.read > handled:
            summary.dropped["limit"] += summary.read - handled

    def _flush(self) -> None:
        if self._batch:
            self._writer.write_table(pa.Table.from_pylist(self._batch, schema=PREPARED_SCHEMA))
            self._batch = []


def _write_split(
    source_split: SplitSource,
    output: _Output,
    *,
    rows: int,
    unseen: _Output | None,
    held_out: set[str],
    dataset: str | None,
    author_map: dict[str, set[str]],
    limit: int | None,
    persona_dropout: tuple[float, float] | None,
    seed: int,
    min_persona_items: int,
    end_examples: bool | None,
    ends: EndPlan,
    show_progress: bool,
) -> None:
    """Write the rows of one source split into ``output``, those of held-out users into
    ``unseen``."""
    bar = tqdm(total=rows, desc=f"writing {output.summary.split}", unit="row",
               disable=not show_progress)  # fmt: skip
    with bar:
        for row in _iter_rows(source_split, dataset=dataset):
            target = unseen if unseen is not None and row.user_id in held_out else output
            if target.is_full(limit):
                if output.is_full(limit) and (unseen is None or unseen.is_full(limit)):
                    break
                continue
            bar.update(1)
            example = _build_example(row, author_map, persona_dropout, seed)
            items = count_persona_items(row.persona)
            summary = target.summary
            if example["example_id"] in target.ids:
                summary.dropped["duplicate"] += 1
            elif is_end_signal(row.completion) and not _keeps_end_row(row, end_examples):
                summary.dropped["end_example"] += 1
            elif items is not None and items < min_persona_items:
                summary.dropped["persona_filter"] += 1
            else:
                target.add(example)
                answer = ends.last_turns.get((row.file, row.index))
                if answer is not None and not target.is_full(limit):
                    target.add(_end_example(row, answer, example))
                    summary.end_added += 1
        bar.update(max(0, bar.total - bar.n))  # rows skipped by the limit


def _build_example(
    row: SourceRow,
    author_map: dict[str, set[str]],
    persona_dropout: tuple[float, float] | None,
    seed: int,
) -> dict[str, Any]:
    persona = row.persona
    if persona_dropout is not None:
        field_p, item_p = persona_dropout
        persona = drop_persona_fields(persona, field_p=field_p, item_p=item_p, seed=seed)
    return {
        "example_id": build_example_id(
            dataset=row.dataset,
            post_id=row.post_id,
            user_id=row.user_id,
            turn_id=row.turn_id,
            reply=row.completion,
        ),
        "data_source": row.dataset,
        "user_id": row.user_id,
        "post_id": row.post_id,
        "turn_id": row.turn_id,
        "timestamp": row.timestamp,
        "messages": render_context(row, authors=author_map.get(row.user_id, ())),
        "persona": render_persona(persona),
        "ground_truth": row.completion,
        "trace": row.trace,
        "states": json.dumps(row.states, ensure_ascii=False) if row.states else "",
    }


def _held_hint(source: str | Path) -> str:
    held = Path(source) / HELD_ROWS_FILE
    if not held.is_file():
        return ""
    return (
        f"; its rows wait for personas in {held}: run `humanlm data personas --input {source} "
        "--llm SPEC` first"
    )


def _split_files(out: Path) -> list[Path]:
    names = [*SPLITS, UNSEEN_SPLIT, *(f"{name}_dropout" for name in (*SPLITS, UNSEEN_SPLIT))]
    return [out / f"{name}.parquet" for name in names if (out / f"{name}.parquet").is_file()]


def _recorded_sources(out: Path) -> dict[str, str]:
    try:
        data = json.loads((out / SOURCES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _refuse_stale_splits(out: Path, source: str | Path, names: list[str]) -> None:
    """Refuse an output folder holding split files of another source that this run would keep,
    or a held-out split that this run does not rewrite.

    Such a file would sit beside the new ones as if it were part of the same dataset.
    """
    recorded = _recorded_sources(out)
    stale = [
        path
        for path in _split_files(out)
        if path.stem not in names and recorded.get(path.name) != str(source)
    ]
    if stale:
        shown = ", ".join(str(p) for p in stale)
        raise DataError(
            f"{shown} {'is' if len(stale) == 1 else 'are'} left from another source and would "
            "sit beside the new splits; delete them or choose another --out",
            file=str(out),
        )
    # Users held out by an earlier run may now be in the new splits: that file would mislead.
    for dropout in sorted({name.endswith("_dropout") for name in names}):
        unseen = out / f"{_output_name(UNSEEN_SPLIT, dropout=dropout)}.parquet"
        if unseen.is_file() and unseen.stem not in names:
            raise DataError(
                f"{unseen} holds users an earlier run held out, who may be in the new splits; "
                "pass --holdout-users again, delete it, or choose another --out",
                file=str(out),
            )


def _refuse_out_at_input(out: Path, source: str | Path, names: list[str]) -> None:
    """Refuse an output folder that is the input folder or lies inside it, a split file that
    would replace the input file, and one written beside a raw file of the same split (a later
    prepare of that folder would find two files for one split)."""
    check_out_outside_input(out, [source], what="prepare --out")
    source_file = Path(source).resolve() if Path(source).is_file() else None
    for name in names:
        target = out / f"{name}.parquet"
        if source_file is not None and target.resolve() == source_file:
            raise DataError(
                "prepare --out would replace this input with its output; choose another --out",
                file=str(source),
            )
        raw = [out / f"{name}{ext}" for ext in EXTENSIONS if ext != ".parquet"]
        beside = [path for path in raw if path.is_file()]
        if beside:
            raise DataError(
                f"prepare --out {out} holds {beside[0].name}, and {target.name} written beside "
                "it would be a second file of that split; choose another --out",
                file=str(source),
            )


def _record_sources(out: Path, source: str | Path, names: list[str]) -> None:
    recorded = _recorded_sources(out)
    recorded.update({f"{name}.parquet": str(source) for name in names})
    write_json(out / SOURCES_FILE, dict(sorted(recorded.items())))


def _output_name(split: str, *, dropout: bool) -> str:
    return f"{split}_dropout" if dropout and not split.endswith("_dropout") else split


def _added(end_added: int) -> str:
    return f" ({end_added} end examples added)" if end_added else ""


def _reasons(dropped: Counter[str]) -> str:
    if not dropped:
        return ""
    return " (" + ", ".join(f"{reason}: {n}" for reason, n in sorted(dropped.items())) + ")"
