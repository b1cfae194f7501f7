"""Add personas to a built folder: one LLM summary per user, or one fixed text for everyone.

Run it from the command line (``humanlm data build`` runs it too unless told otherwise):

    humanlm data personas --input data/mine --llm openai:gpt-5-mini --k 20 --concurrency 16
    humanlm data personas --input data/chat --fixed "A user who is chatting with an AI assistant."

Each user's persona summarises their earliest ``k`` training replies (by timestamp); a user with
no training reply (a user-held-out split, or ``--no-seen-users``) is summarised from their
earliest replies in their own split. Finished users go to ``personas.jsonl`` as they finish, so
an interrupted run resumes where it stopped. Users whose persona fails after all retries are
named in the summary and the card, and their rows move to ``persona_failed.parquet`` (with their
split) instead of carrying a placeholder; a later run retries them and puts the rows back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from humanlm.build.output import HELD_FILE, HELD_SCHEMA, PERSONA_LOG, read_built, write_built
from humanlm.build.splits import SPLIT_NAMES
from humanlm.enrich.persona_calls import (
    PersonaRequest,
    request_key,
    summarise_personas,
)
from humanlm.enrich.persona_prompt import PersonaReply, build_persona_prompt, persona_prompt_version
from humanlm.errors import ConfigError, JudgeUnavailableError
from humanlm.files import check_output_dir
from humanlm.llm.build import build_backend
from humanlm.llm.cache import LLMCache
from humanlm.llm.ledger import accumulate
from humanlm.llm.limits import RetryPolicy
from humanlm.states.ending import is_end_signal

__all__ = ["PersonaSummary", "run_personas"]

logger = logging.getLogger(__name__)


@dataclass
class PersonaSummary:
    """The outcome of `run_personas`.

    Attributes:
        data_dir: the folder.
        source: ``llm`` or ``fixed``.
        users: users with a persona.
        generated, reused: personas made by a call in this run / taken from the log or cache.
        failed: user id -> reason, for users without a persona.
        held_rows: rows moved to ``persona_failed.parquet``.
        ledger: calls, tokens, failed attempts and cost (LLM only).
        info: the updated ``build_summary.json`` content.
    """

    data_dir: Path
    source: str
    users: int = 0
    generated: int = 0
    reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    held_rows: int = 0
    ledger: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One paragraph: users, calls and failures."""
        if self.source == "fixed":
            return f"personas: one fixed text for all {self.users:,} users"
        text = (
            f"personas: {self.users:,} users ({self.generated:,} generated, {self.reused:,} "
            f"reused); {self.ledger.get('calls', 0):,} calls, "
            f"{self.ledger.get('input_tokens', 0):,} + {self.ledger.get('output_tokens', 0):,} tokens"
        )
        if self.failed:
            shown = ", ".join(sorted(self.failed)[:20])
            text += (
                f"; FAILED for {len(self.failed):,} users ({shown}{' ...' if len(self.failed) > 20 else ''})"
                f": {self.held_rows:,} rows held in persona_failed.parquet"
            )
        return text

    def resume_hint(self, llm: str) -> str:
        """How to finish a folder whose personas failed for some users."""
        return (
            f"{len(self.failed):,} users have no persona; their {self.held_rows:,} rows stay in "
            f"{HELD_FILE} (not a split) until `humanlm data personas --input {self.data_dir} "
            f"--llm {llm}` succeeds for them"
        )


def run_personas(
    *,
    data_dir: str | Path,
    llm: str | None = None,
    fixed: str | None = None,
    k: int = 20,
    concurrency: int = 8,
    api_key_env: str | None = None,
    temperature: float | None = None,
    cache: str | Path | None = None,
    retry: RetryPolicy | None = None,
    content_retries: int = 2,
    show_progress: bool = False,
    fresh: bool = False,
) -> PersonaSummary:
    """Write personas into every row of a built folder.

    Example:
        >>> run_personas(data_dir="data/mine", llm="openai:gpt-5-mini").describe()  # doctest: +SKIP

    Args:
        data_dir: a folder written by ``humanlm data build``.
        llm: the persona model spec; or
        fixed: one persona text for every row (no calls).
        k: replies summarised per user (earliest first).
        concurrency: calls in flight.
        api_key_env: environment variable with the API key (default ``OPENAI_API_KEY``).
        temperature: sampling temperature (``None``: the server's default).
        cache: optional SQLite cache shared across folders.
        retry: transport retries (429, 5xx, timeouts, connection errors), backoff and the
            deadline per user; default 4 retries within 10 minutes.
        content_retries: re-asks per user after an invalid or off-schema reply.
        show_progress: a tqdm bar over users.
        fresh: summarise every user again (the log of finished users is cleared; a ``cache``
            still answers).

    A rerun retries only the users without a persona; the ledger in ``build_summary.json``
    adds up over the runs (each run's own figures under ``invocations``).

    Raises:
        ConfigError: neither or both of ``llm`` and ``fixed``; ``k`` below 1.
        DataError: the folder is not a built folder.
        JudgeUnavailableError: the model refused the key or is unknown (finished users are kept).
    """
    check_output_dir(data_dir, what="personas --input")
    if (llm is None) == (fixed is None):
        raise ConfigError("personas: give exactly one of --llm SPEC and --fixed TEXT")
    if k < 1:
        raise ConfigError("personas: --k must be >= 1")
    folder = read_built(data_dir)
    tables = _restore_held(folder.tables, folder.held)
    info = dict(folder.info)
    users = {u for t in tables.values() for u in t.column("user_id").to_pylist()}
    if fixed is not None:
        for name, table in tables.items():
            tables[name] = _with_persona(table, [fixed] * table.num_rows)
        info["personas"] = {"source": "fixed", "users": len(users)}
        info["stats"] = write_built(data_dir, tables=tables, held=None, info=info)
        return PersonaSummary(Path(data_dir), "fixed", users=len(users), info=info)

    assert llm is not None
    params = {"temperature": temperature} if temperature is not None else {}
    backend = build_backend(llm, role="persona model", api_key_env=api_key_env, params=params)
    replies = _persona_replies(tables, k)
    requests = []
    for user, user_replies in sorted(replies.items()):
        prompt = build_persona_prompt(user_replies)
        requests.append(PersonaRequest(user, prompt, request_key(backend, params, prompt)))
    persona_cache = LLMCache(cache) if cache else None
    log_path = Path(data_dir) / PERSONA_LOG
    if fresh:
        log_path.unlink(missing_ok=True)
    try:
        outcome = asyncio.run(
            summarise_personas(
                requests,
                backend=backend,
                log_path=log_path,
                concurrency=concurrency,
                retry=retry or RetryPolicy(max_retries=4, timeout_s=600.0, request_timeout_s=300.0),
                content_retries=content_retries,
                cache=persona_cache,
                show_progress=show_progress,
            )
        )
    except JudgeUnavailableError as err:
        held = f"rows without a persona stay in {HELD_FILE}; " if folder.held else ""
        raise JudgeUnavailableError(
            f"{err}; {held}users finished so far are kept in {log_path}: fix the key or model "
            "and run the same command again"
        ) from None
    finally:
        if persona_cache is not None:
            persona_cache.close()
    held_parts = []
    for name, table in tables.items():
        row_users = table.column("user_id").to_pylist()
        has = np.array([u in outcome.personas for u in row_users], dtype=bool)
        kept = table.filter(pa.array(has))
        tables[name] = _with_persona(
            kept, [outcome.personas[u] for u in kept.column("user_id").to_pylist()]
        )
        missing = table.filter(pa.array(~has))
        if missing.num_rows:
            held_parts.append(
                missing.append_column("split", pa.repeat(pa.scalar(name), missing.num_rows))
            )
    held = pa.concat_tables(held_parts).cast(HELD_SCHEMA) if held_parts else None
    failed = dict(sorted(outcome.failed.items()))
    info["personas"] = {
        "source": "llm",
        "model": llm.split("@", 1)[0],
        "prompt_version": persona_prompt_version(),
        "k": k,
        "users": len(outcome.personas),
        "generated": outcome.generated,
        "reused": outcome.reused,
        "failed": list(failed),
        "failure_reasons": dict(Counter(reason.split(" (")[0] for reason in failed.values())),
        "held_rows": held.num_rows if held is not None else 0,
        "ledger": accumulate(
            None if fresh else (folder.info.get("personas") or {}).get("ledger"),
            outcome.ledger.to_dict(),
        ),
    }
    info["stats"] = write_built(data_dir, tables=tables, held=held, info=info)
    return PersonaSummary(
        data_dir=Path(data_dir),
        source="llm",
        users=len(outcome.personas),
        generated=outcome.generated,
        reused=outcome.reused,
        failed=failed,
        held_rows=info["personas"]["held_rows"],
        ledger=outcome.ledger.to_dict(),
        info=info,
    )


def _restore_held(tables: dict[str, pa.Table], held: pa.Table | None) -> dict[str, pa.Table]:
    """Put rows held back by an earlier run into their splits again (in the usual row order)."""
    if held is None or not held.num_rows:
        return dict(tables)
    restored = {}
    for name in SPLIT_NAMES:
        back = held.filter(pc.equal(held.column("split"), name)).drop_columns(["split"])
        if not back.num_rows:
            restored[name] = tables[name]
            continue
        merged = pa.concat_tables([tables[name], back.cast(tables[name].schema)])
        restored[name] = merged.sort_by(
            [("timestamp", "ascending"), ("post_id", "ascending"), ("turn_id", "ascending")]
        )
    return restored


def _with_persona(table: pa.Table, personas: list[str]) -> pa.Table:
    index = table.schema.get_field_index("persona")
    return table.set_column(index, "persona", pa.array(personas, pa.string()))


def _persona_replies(tables: dict[str, pa.Table], k: int) -> dict[str, list[PersonaReply]]:
    """Each user's earliest ``k`` replies: from train, else from the first split that has them.

    End rows (reply: the end signal) say nothing about how a user writes and are skipped.
    """
    chosen: dict[str, list[PersonaReply]] = {}
    for name in SPLIT_NAMES:
        table = tables[name]
        if not table.num_rows:
            continue
        users = table.column("user_id").to_pylist()
        times = table.column("timestamp").to_pylist()
        posts = table.column("post_id").to_pylist()
        replies = table.column("completion").to_pylist()
        order = sorted(
            (i for i, u in enumerate(users) if u not in chosen and not is_end_signal(replies[i])),
            key=lambda i: (users[i], times[i] if times[i] is not None else 0, posts[i], i),
        )
        picked: list[int] = []
        count: Counter[str] = Counter()
        for i in order:
            if count[users[i]] < k:
                count[users[i]] += 1
                picked.append(i)
        if not picked:
            continue
        rows = pa.array(picked, pa.int64())
        texts = table.column("completion").take(rows).to_pylist()
        authors, contents = _last_messages(table.column("prompt"), picked)
        for j, i in enumerate(picked):
            reply = PersonaReply(texts[j], times[i], authors[j], contents[j])
            chosen.setdefault(users[i], []).append(reply)
    return chosen


def _last_messages(prompts: pa.ChunkedArray, rows: list[int]) -> tuple[list[str], list[str]]:
    """Author and text of the last context message of each of ``rows`` ("" when empty)."""
    combined = prompts.combine_chunks()
    offsets = np.asarray(combined.offsets, dtype=np.int64)
    picked = np.asarray(rows, dtype=np.int64)
    ends = offsets[picked + 1]
    has = ends > offsets[picked]
    last = pa.array(np.where(has, ends - 1, 0))
    values = combined.values
    if len(values) == 0:
        return [""] * len(rows), [""] * len(rows)
    authors = values.field("role").take(last).to_pylist()
    contents = values.field("content").take(last).to_pylist()
    return (
        [a if h else "" for a, h in zip(authors, has, strict=True)],
        [c if h else "" for c, h in zip(contents, has, strict=True)],
    )
