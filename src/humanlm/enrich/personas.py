"""Personas for a built folder: one LLM summary per user, or one fixed text for everyone.

Run it from the command line (``humanlm data build`` runs it too unless told otherwise):

    humanlm data personas --input data/mine --llm openai:gpt-5-mini --k 20 --concurrency 16
    humanlm data personas --input data/chat --fixed "A user who is chatting with an AI assistant."

Each user's persona summarises their earliest ``k`` training replies (by timestamp); a user with
no training reply (a user-held-out split, or ``--no-seen-users``) is summarised from their
earliest replies in their own split. Finished users go to ``personas.jsonl`` as they finish, so
an interrupted run resumes where it stopped. Users whose persona fails after all retries are
named in the summary and the card, and their rows move to ``persona_failed.parquet`` (with their
split) instead of carrying a placeholder; a later run retries them and puts the rows back.

The module reads in three parts:

- the prompt and the reply check: `build_persona_prompt` shows a user's replies; templates live
  in ``enrich/prompts/*.md``, versioned in ``enrich/prompts/VERSIONS`` (bump the version whenever
  a template changes); `parse_persona_reply` checks a reply against the Humanual persona schema;
- the calls: `summarise_personas` makes one chat call per user through ``humanlm.llm``
  (``openai:MODEL[@URL]`` or ``litellm:PROVIDER/MODEL``), at most ``concurrency`` in flight. An
  unusable reply is sent back with the problem (content retries), while 429s, 5xx, timeouts and
  dropped connections are retried with the shared `RetryPolicy`. Finished users are appended to
  a JSON-lines log, flushed and synced one user at a time; a new run skips every user whose log
  entry has the same request key (model, sampling parameters, prompt version and prompt), so a
  crash loses only the users in flight;
- the folder: `run_personas` picks each user's replies, runs the calls and writes the personas
  into every row.

Example:
    >>> persona, problem = parse_persona_reply('{"demographics": {}}')
    >>> persona, problem
    (None, 'interests must be a list of strings')
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from humanlm.data.persona import DEMOGRAPHICS
from humanlm.data.schema import PERSONA_MAX_CHARS, persona_size_problem
from humanlm.errors import ConfigError, JudgeUnavailableError
from humanlm.files import append_jsonl, check_output_dir, open_append, read_jsonl
from humanlm.ingest.output import HELD_FILE, HELD_SCHEMA, PERSONA_LOG, read_built, write_built
from humanlm.ingest.splits import SPLIT_NAMES
from humanlm.llm.backends import ChatBackend
from humanlm.llm.build import build_backend
from humanlm.llm.cache import LLMCache, cache_key
from humanlm.llm.client import ChatClient, ask_item, run_bounded
from humanlm.llm.jsonreply import read_json_object
from humanlm.llm.ledger import Ledger, accumulate
from humanlm.llm.limits import RateLimiter, RetryPolicy
from humanlm.llm.templates import PromptFolder
from humanlm.lock import holds_output_lock
from humanlm.states.ending import is_end_signal
from humanlm.states.render import render

__all__ = [
    "LIST_SIZES",
    "PersonaOutcome",
    "PersonaReply",
    "PersonaRequest",
    "PersonaSummary",
    "build_persona_prompt",
    "load_persona_log",
    "parse_persona_reply",
    "persona_prompt_version",
    "render_retry_prompt",
    "request_key",
    "run_personas",
    "summarise_personas",
]

logger = logging.getLogger(__name__)

# --- the prompt and the reply check ---

# Allowed item counts per persona list (the Humanual persona format).
LIST_SIZES: dict[str, tuple[int, int]] = {
    "interests": (8, 12),
    "values": (8, 12),
    "communication": (8, 12),
    "statistics": (5, 10),
}
_MAX_REPLY_CHARS = 1500
_MAX_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class PersonaReply:
    """One reply shown to the persona model: its text, time and what it answered."""

    text: str
    timestamp: int | None = None
    answered_author: str = ""
    answered_text: str = ""


PROMPTS = PromptFolder("humanlm.enrich")


def _template(name: str) -> str:
    return PROMPTS.load(name)


def persona_prompt_version() -> str:
    """Version of the persona prompt, from ``enrich/prompts/VERSIONS``."""
    return PROMPTS.version("persona")


def build_persona_prompt(replies: Sequence[PersonaReply]) -> str:
    """The persona prompt for one user's replies (oldest first), long texts shortened."""
    blocks = []
    for n, reply in enumerate(replies, start=1):
        when = ""
        if reply.timestamp is not None:
            when = dt.datetime.fromtimestamp(reply.timestamp, dt.timezone.utc).strftime(
                " (%Y-%m-%d)"
            )
        excerpt = _shorten(reply.answered_text, _MAX_EXCERPT_CHARS)
        answered = f"{reply.answered_author or 'someone'} wrote: {excerpt}" if excerpt else "a post"
        blocks.append(
            f"## Message {n}{when}\nIn answer to {answered}\n\n{_shorten(reply.text, _MAX_REPLY_CHARS)}"
        )
    words = [len(r.text.split()) for r in replies]
    facts = (
        f"{len(replies)} messages; median length {statistics.median(words):g} words, "
        f"shortest {min(words)}, longest {max(words)}"
        if words
        else "no messages"
    )
    return render(
        _template("persona"), count=len(replies), facts=facts, messages="\n\n".join(blocks)
    )


def parse_persona_reply(text: str | None) -> tuple[dict[str, Any] | None, str]:
    """Read a persona from a model reply and check it against the schema.

    Accepts the JSON object alone or inside a code fence. Missing or null demographic fields
    become "NA"; list items are stripped. Refused: a demographic value that is not text (a
    number, NaN, a list), and a persona over the size limits of the Humanual format
    (`PERSONA_ITEM_MAX_CHARS` per item or value, `PERSONA_MAX_CHARS` in all), which are a bit
    above what the prompt asks (one sentence of at most 30 words per item).

    Returns:
        ``(persona, "ok")``, or ``(None, problem)`` naming what is wrong.
    """
    data, problem = read_json_object(text)
    if data is None:
        return None, problem
    demographics = data.get("demographics")
    if not isinstance(demographics, dict):
        return None, "demographics must be an object"
    persona: dict[str, Any] = {"demographics": {}}
    for key in DEMOGRAPHICS:
        value = demographics.get(key, "NA")
        if value is None:
            value = "NA"
        if not isinstance(value, str):
            return None, f'demographics.{key} must be text (or "NA"), got {json.dumps(value)}'
        persona["demographics"][key] = value.strip() or "NA"
    for name, (low, high) in LIST_SIZES.items():
        items = data.get(name)
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            return None, f"{name} must be a list of strings"
        items = [i.strip() for i in items if i.strip()]
        if not low <= len(items) <= high:
            return None, f"{name} has {len(items)} items; it needs {low} to {high}"
        persona[name] = items
    too_big = persona_size_problem(persona)
    if too_big is not None:
        where, problem = too_big
        where = where.removeprefix("persona").lstrip(".") or "the persona"
        return None, f"{where}: {problem}; keep each item to one sentence of at most 30 words"
    return persona, "ok"


def render_retry_prompt(problem: str) -> str:
    """The follow-up message that sends an unusable reply's problem back to the model."""
    return render(_template("persona_retry"), problem=problem)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split()) if len(text) > limit else text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


# --- the calls ---

_OUTPUT_GUESS = 800  # tokens of a persona reply, for the TPM limiter before usage is known


@dataclass(frozen=True)
class PersonaRequest:
    """The persona call of one user: the prompt and the key that identifies its answer."""

    user_id: str
    prompt: str
    key: str


@dataclass
class PersonaOutcome:
    """What `summarise_personas` produced.

    Attributes:
        personas: user id -> persona JSON text (new and reused).
        failed: user id -> why no persona was made (after all retries).
        reused: users taken from the log or the cache without a call.
        generated: users summarised by a call in this run.
        ledger: calls, tokens, failed attempts and cost of this run.
    """

    personas: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    reused: int = 0
    generated: int = 0
    ledger: Ledger = field(default_factory=Ledger)


def request_key(backend: ChatBackend, params: Mapping[str, Any], prompt: str) -> str:
    """The key of one persona answer: model identity, parameters, prompt version and prompt."""
    return cache_key(
        {
            **backend.identity(),
            "params": dict(params),
            "prompt_version": persona_prompt_version(),
            "prompt": prompt,
        }
    )


def load_persona_log(path: str | Path) -> dict[str, dict[str, Any]]:
    """The finished users of a persona log: user id -> its last record.

    A line that does not parse (the tail of a run killed mid-write) is skipped with a warning.
    """
    return {str(r["user_id"]): r for r in read_jsonl(path) if "user_id" in r}


async def summarise_personas(
    requests: Sequence[PersonaRequest],
    *,
    backend: ChatBackend,
    log_path: str | Path,
    concurrency: int = 8,
    retry: RetryPolicy | None = None,
    content_retries: int = 2,
    limiter: RateLimiter | None = None,
    cache: LLMCache | None = None,
    seed: int = 0,
    show_progress: bool = False,
) -> PersonaOutcome:
    """Make a persona for every request, reusing finished ones from the log (and the cache).

    Args:
        requests: one per user.
        backend: the chat model.
        log_path: the JSON-lines log of finished users (appended to, one line per user).
        concurrency: calls in flight at once.
        retry: transport retries, backoff and the overall deadline per user.
        content_retries: re-asks after an invalid reply, per user.
        limiter: requests/tokens per minute (``None``: unlimited).
        cache: optional SQLite cache shared across output folders.
        seed: seed of the backoff jitter.
        show_progress: a tqdm bar over users.

    Raises:
        JudgeUnavailableError: the server refused the key or does not know the model; users
            finished so far stay in the log.
    """
    if concurrency < 1 or content_retries < 0:
        raise ConfigError("personas: need concurrency >= 1 and content retries >= 0")
    outcome = PersonaOutcome(ledger=Ledger(model=backend.model))
    done = load_persona_log(log_path)
    pending = []
    for request in requests:
        record = done.get(request.user_id)
        if record is not None and (record.get("key") != request.key or not _usable(record)):
            record = None
        hit = cache.get(request.key) if cache is not None and record is None else None
        if record is not None:
            outcome.personas[request.user_id] = record["persona"]
            outcome.reused += 1
        elif hit is not None and _usable(hit):
            outcome.personas[request.user_id] = hit["persona"]
            outcome.reused += 1
        else:
            pending.append(request)
    logger.info("personas: %d reused, %d to summarise", outcome.reused, len(pending))
    if not pending:
        return outcome
    client = ChatClient(
        backend,
        name=backend.model,
        retry=retry or RetryPolicy(),
        ledger=outcome.ledger,
        limiter=limiter,
        output_guess=_OUTPUT_GUESS,
        seed=seed,
    )
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with (
        open_append(log_path) as log,
        tqdm(total=len(pending), desc="personas", unit="user", disable=not show_progress) as bar,
    ):

        async def handle(request: PersonaRequest) -> None:
            persona, reason = await ask_item(
                client,
                request.prompt,
                parse=parse_persona_reply,
                follow_up=render_retry_prompt,
                content_retries=content_retries,
            )
            if persona is None:
                outcome.failed[request.user_id] = reason
                logger.warning("persona of user %s failed: %s", request.user_id, reason)
            else:
                text = json.dumps(persona, ensure_ascii=False)
                _append(log, request, text, backend.model)
                if cache is not None:
                    cache.put(request.key, {"persona": text})
                outcome.personas[request.user_id] = text
                outcome.generated += 1
            bar.update(1)

        try:
            await run_bounded(pending, handle, concurrency=concurrency)
        finally:
            await backend.aclose()
    return outcome


def _usable(record: Mapping[str, Any]) -> bool:
    """Whether a logged or cached persona still passes the reply check (an older run may have
    kept one that the size limits now refuse); one that does not is asked for again."""
    persona = record.get("persona")
    return isinstance(persona, str) and parse_persona_reply(persona)[0] is not None


def _append(log: IO[str], request: PersonaRequest, persona: str, model: str) -> None:
    record = {
        "user_id": request.user_id,
        "key": request.key,
        "model": model,
        "prompt_version": persona_prompt_version(),
        "persona": persona,
    }
    append_jsonl(log, record)


# --- the folder ---


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


@holds_output_lock("data_dir", command="data personas", option="--input")
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
    if fixed is not None and len(fixed) > PERSONA_MAX_CHARS:
        raise ConfigError(
            f"personas: the fixed persona has {len(fixed):,} characters; the limit is "
            f"{PERSONA_MAX_CHARS:,}"
        )
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
