"""Thinking traces for SFT-think: an LLM writes the reasoning that leads to each real reply.

Run it from the command line on a prepared folder:

    humanlm data traces --input data/reddit --out data/reddit_think --llm openai:gpt-5-mini

For every example the model sees the persona, the context and the real reply, and writes 2-4
first-person sentences (stance, emotion, what to say, tone) that lead to the reply without
quoting it. The traces go into the ``trace`` column of ``OUT/<split>.parquet`` (same schema as
``humanlm data prepare``), where ``sft-think`` turns them into
``<trace>\\n</think>\\n\\n<response>reply</response>`` targets.

Each finished example is appended to ``OUT/traces.jsonl`` (flushed and synced), so a rerun skips
it and a crash loses only the examples in flight. A reply that is empty or breaks the rules is
sent back with the problem a bounded number of times; an example that still fails is reported
and written with an empty trace, which sft-think skips (never an empty ``<think>`` block).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from humanlm.data.prepare import PREPARED_COLUMNS, PREPARED_SCHEMA, read_prepared_table
from humanlm.data.transcript import render_transcript, sanitise
from humanlm.errors import ConfigError, DataError
from humanlm.files import (
    append_jsonl,
    atomic_path,
    check_output_dir,
    check_output_file,
    open_append,
    read_jsonl,
    write_json,
)
from humanlm.llm.build import build_backend
from humanlm.llm.client import ChatClient, ask_item, run_bounded
from humanlm.llm.jsonreply import read_json_object
from humanlm.llm.ledger import Ledger, accumulate
from humanlm.llm.limits import RetryPolicy
from humanlm.llm.specs import parse_spec
from humanlm.llm.templates import PromptFolder
from humanlm.lock import holds_output_lock
from humanlm.states.render import render

__all__ = [
    "TRACE_LOG",
    "TRACE_SUMMARY",
    "SplitTraces",
    "TraceSummary",
    "build_trace_prompt",
    "parse_trace_reply",
    "run_traces",
    "trace_prompt_version",
]

logger = logging.getLogger(__name__)

PROMPTS = PromptFolder("humanlm.enrich")

TRACE_LOG = "traces.jsonl"
TRACE_SUMMARY = "traces_summary.json"

# The prompt asks for 2-4 sentences; the check leaves slack for abbreviations ("e.g.") and the
# odd extra clause, but refuses one-liners and essays.
_MIN_SENTENCES, _MAX_SENTENCES, _MAX_WORDS = 2, 6, 160
# A run of this many reply words inside the trace counts as quoting the reply.
_QUOTE_WORDS = 12
_MAX_CONTEXT_MESSAGES = 20
_MAX_MESSAGE_CHARS = 3000
_MAX_REPLY_CHARS = 4000
_TAG = re.compile(r"</?\s*[A-Za-z_][\w-]*\s*/?>")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?:\s+|$)")


def trace_prompt_version() -> str:
    """Version of the trace prompt (``trace-v<N>``), from ``enrich/prompts/VERSIONS``."""
    return f"trace-v{PROMPTS.version('trace')}"


def build_trace_prompt(example: Mapping[str, Any]) -> str:
    """The trace prompt of one prepared example: persona, context and real reply, sanitised.

    Long contexts keep their last messages; very long messages and replies are shortened.
    """
    messages = list(example.get("messages") or [])
    left_out = max(0, len(messages) - _MAX_CONTEXT_MESSAGES)
    shown = [
        {**m, "content": _shorten(str(m.get("content") or ""), _MAX_MESSAGE_CHARS)}
        for m in messages[left_out:]
    ]
    context = render_transcript(shown)
    if left_out:
        context = f"({left_out} earlier messages left out)\n\n{context}"
    persona = sanitise(str(example.get("persona") or "")).strip() or "(no profile)"
    reply = _shorten(sanitise(str(example["ground_truth"])), _MAX_REPLY_CHARS)
    return render(PROMPTS.load("trace"), persona=persona, context=context, reply=reply)


def parse_trace_reply(text: str | None, *, reply: str) -> tuple[str | None, str]:
    """Read the trace from a model reply ``{"trace": "..."}`` and check it.

    The trace must be non-empty, about 2-4 sentences (2 to 6 counted, at most 160 words), free
    of tags such as ``<think>`` or ``</response>``, and must not repeat or quote ``reply``.
    Whitespace is collapsed to single spaces.

    Returns:
        ``(trace, "ok")``, or ``(None, problem)`` naming what is wrong.
    """
    if not (text or "").strip().strip("`").strip():
        return None, "the reply was empty"
    data, problem = read_json_object(text, what='JSON object {"trace": "..."}')
    if data is None:
        return None, problem
    if not isinstance(data.get("trace"), str):
        return None, 'the JSON needs a "trace" text field'
    trace = " ".join(data["trace"].split())
    if not trace:
        return None, "the trace is empty"
    if _TAG.search(trace):
        return None, "the trace contains tags or markup"
    if _quotes(trace, reply):
        return None, "the trace quotes the reply word for word"
    sentences = len([s for s in _SENTENCE_END.split(trace) if s.strip()])
    if not _MIN_SENTENCES <= sentences <= _MAX_SENTENCES:
        plural = "" if sentences == 1 else "s"
        return None, f"the trace has {sentences} sentence{plural}; it needs 2 to 4"
    if len(trace.split()) > _MAX_WORDS:
        return None, f"the trace has {len(trace.split())} words; keep it under {_MAX_WORDS}"
    return trace, "ok"


def render_trace_retry(problem: str) -> str:
    """The follow-up message that sends an unusable reply's problem back to the model."""
    return render(PROMPTS.load("trace_retry"), problem=problem)


@dataclass
class SplitTraces:
    """Rows of one split by where their trace came from.

    Attributes:
        kept: rows whose input trace was kept (no ``--overwrite``).
        cached: traces taken from ``traces.jsonl`` without a call.
        generated: traces written by a call in this run.
        failed: rows written with an empty trace after all retries.
    """

    split: str
    path: Path
    rows: int = 0
    kept: int = 0
    cached: int = 0
    generated: int = 0
    failed: int = 0


@dataclass
class TraceSummary:
    """The outcome of `run_traces`.

    Attributes:
        out_dir: the output folder.
        llm: the trace model (``kind:model``, no URL).
        prompt_version: the trace prompt version.
        splits: counts per split.
        failed: example id -> why no trace was written.
        ledger: calls, tokens and failed attempts of this run.
    """

    out_dir: Path
    llm: str
    prompt_version: str
    splits: list[SplitTraces] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    ledger: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """Lines per split, the calls made, and the failed examples."""
        lines = [f"traces by {self.llm} ({self.prompt_version}) in {self.out_dir}"]
        for s in self.splits:
            lines.append(
                f"  {s.split}: {s.rows:,} rows: {s.generated:,} generated, {s.cached:,} cached, "
                f"{s.kept:,} kept, {s.failed:,} failed -> {s.path}"
            )
        lines.append(
            f"calls: {self.ledger.get('calls', 0):,}, tokens: "
            f"{self.ledger.get('input_tokens', 0):,} + {self.ledger.get('output_tokens', 0):,}"
        )
        if self.failed:
            shown = ", ".join(sorted(self.failed)[:20]) + (" ..." if len(self.failed) > 20 else "")
            lines.append(
                f"FAILED for {len(self.failed):,} examples ({shown}): written with an empty "
                f"trace, which sft-think skips; rerun to retry them (see {TRACE_SUMMARY})"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The content of ``traces_summary.json``."""
        reasons = Counter(reason.split(" (")[0] for reason in self.failed.values())
        return {
            "llm": self.llm,
            "prompt_version": self.prompt_version,
            "splits": {
                s.split: {k: v for k, v in asdict(s).items() if k not in ("split", "path")}
                for s in self.splits
            },
            "failed": self.failed,
            "failure_reasons": dict(reasons),
            "ledger": self.ledger,
        }


@holds_output_lock("out_dir", command="data traces")
def run_traces(
    *,
    input_dir: str | Path,
    out_dir: str | Path,
    llm: str,
    splits: list[str] | None = None,
    overwrite: bool = False,
    concurrency: int = 8,
    api_key_env: str | None = None,
    temperature: float | None = None,
    retry: RetryPolicy | None = None,
    content_retries: int = 2,
    show_progress: bool = False,
    fresh: bool = False,
) -> TraceSummary:
    """Fill the ``trace`` column of a prepared folder and write it to ``out_dir``.

    Example:
        >>> run_traces(input_dir="data/reddit", out_dir="data/reddit_think",
        ...            llm="openai:gpt-5-mini").describe()  # doctest: +SKIP

    One trace per example id (an id in two splits is asked once). Traces in ``traces.jsonl``
    count only for the same model and prompt version; ``--overwrite`` replaces traces that came
    with the input but still reuses that log (delete it to start over).

    Args:
        input_dir: a folder of ``<split>.parquet`` files written by ``humanlm data prepare``.
        out_dir: where ``<split>.parquet``, ``traces.jsonl`` and ``traces_summary.json`` go
            (may be ``input_dir``; files are replaced atomically).
        llm: the trace model: ``openai:MODEL``, ``openai:MODEL@URL`` or ``litellm:P/M``.
        splits: the splits to do (default: every ``*.parquet`` in ``input_dir``).
        overwrite: regenerate traces that the input rows already have.
        concurrency: calls in flight.
        api_key_env: environment variable with the API key (default ``OPENAI_API_KEY``).
        temperature: sampling temperature (``None``: the server's default).
        retry: transport retries (429, 5xx, timeouts), backoff and the deadline per example;
            default 4 retries within 5 minutes.
        content_retries: re-asks per example after an empty or invalid reply.
        show_progress: a tqdm bar over examples.
        fresh: ask for every trace again (``traces.jsonl`` is cleared).

    A rerun asks only for the examples without a trace; the ledger in ``traces_summary.json``
    adds up over the runs (each run's own figures under ``invocations``).

    Returns:
        Counts per split, failed example ids with reasons, and the call ledger (this run's).

    Raises:
        DataError: the input folder, a split file or its columns are missing.
        ConfigError: a bad model spec, a missing API key or bad numbers.
        JudgeUnavailableError: the model refused the key or is unknown (finished traces stay in
            ``traces.jsonl``).
    """
    if concurrency < 1 or content_retries < 0:
        raise ConfigError("traces: need --concurrency >= 1 and content retries >= 0")
    tables = {name: _read_split(path) for name, path in _split_files(input_dir, splits).items()}
    spec = parse_spec(llm, role="trace model", kinds=("openai", "litellm"))
    llm_id, version = f"{spec.kind}:{spec.model}", trace_prompt_version()
    out = check_output_dir(out_dir, what="traces --out")
    for name in tables:
        check_output_file(out / f"{name}.parquet", what="traces --out")
    if fresh:
        (out / TRACE_LOG).unlink(missing_ok=True)
    previous = None if fresh else _previous_ledger(out / TRACE_SUMMARY)
    done = {
        eid: record["trace"]
        for eid, record in {
            str(r["example_id"]): r for r in read_jsonl(out / TRACE_LOG) if "example_id" in r
        }.items()
        if record.get("llm") == llm_id
        and record.get("prompt_version") == version
        and isinstance(record.get("trace"), str)
        and record["trace"].strip()
    }
    ids = {name: table.column("example_id").to_pylist() for name, table in tables.items()}
    given = {
        name: [(t or "").strip() != "" and not overwrite for t in table.column("trace").to_pylist()]
        for name, table in tables.items()
    }
    pending: dict[str, tuple[str, int]] = {}  # example id -> (split, row) of its first row
    for name in tables:
        for i, eid in enumerate(ids[name]):
            if not given[name][i] and eid not in done and eid not in pending:
                pending[eid] = (name, i)
    logger.info("traces: %d examples to ask, %d in %s", len(pending), len(done), TRACE_LOG)

    backend = build_backend(
        llm,
        role="trace model",
        api_key_env=api_key_env,
        params={"temperature": temperature} if temperature is not None else None,
    )
    ledger = Ledger(model=backend.model)
    new: dict[str, str] = {}
    failed: dict[str, str] = {}
    if pending:
        policy = retry or RetryPolicy(max_retries=4, timeout_s=300.0, request_timeout_s=120.0)
        rows = [(tables[name], i) for name, i in pending.values()]
        new, failed = asyncio.run(
            _ask_all(
                rows,
                client=ChatClient(
                    backend, name=llm_id, retry=policy, ledger=ledger, output_guess=800
                ),
                log_path=out / TRACE_LOG,
                record={"prompt_version": version, "llm": llm_id},
                concurrency=concurrency,
                content_retries=content_retries,
                show_progress=show_progress,
            )
        )
    summary = TraceSummary(out, llm_id, version, failed=dict(sorted(failed.items())))
    for name, table in tables.items():
        counts = SplitTraces(name, out / f"{name}.parquet", rows=table.num_rows)
        traces = table.column("trace").to_pylist()
        for i, eid in enumerate(ids[name]):
            if given[name][i]:
                counts.kept += 1
            elif eid in new:
                traces[i], counts.generated = new[eid], counts.generated + 1
            elif eid in done:
                traces[i], counts.cached = done[eid], counts.cached + 1
            else:
                traces[i], counts.failed = "", counts.failed + 1
        column = table.schema.get_field_index("trace")
        with atomic_path(counts.path) as tmp:
            pq.write_table(table.set_column(column, "trace", pa.array(traces, pa.string())), tmp)
        summary.splits.append(counts)
    summary.ledger = ledger.to_dict()
    write_json(
        out / TRACE_SUMMARY, {**summary.to_dict(), "ledger": accumulate(previous, summary.ledger)}
    )
    return summary


def _previous_ledger(path: Path) -> dict[str, Any] | None:
    try:
        ledger = json.loads(path.read_text(encoding="utf-8")).get("ledger")
    except (OSError, ValueError, AttributeError):
        return None
    return ledger if isinstance(ledger, dict) else None


async def _ask_all(
    rows: list[tuple[pa.Table, int]],
    *,
    client: ChatClient,
    log_path: Path,
    record: dict[str, str],
    concurrency: int,
    content_retries: int,
    show_progress: bool,
) -> tuple[dict[str, str], dict[str, str]]:
    """Ask for the trace of each (table, row); return (id -> trace, id -> failure reason)."""
    traces: dict[str, str] = {}
    failed: dict[str, str] = {}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open_append(log_path) as log,
        tqdm(total=len(rows), desc="traces", unit="example", disable=not show_progress) as bar,
    ):

        async def handle(row: tuple[pa.Table, int]) -> None:
            example = row[0].slice(row[1], 1).to_pylist()[0]
            eid = example["example_id"]
            trace, reason = await ask_item(
                client,
                build_trace_prompt(example),
                parse=partial(parse_trace_reply, reply=example["ground_truth"]),
                follow_up=render_trace_retry,
                content_retries=content_retries,
            )
            if trace is None:
                failed[eid] = reason
                logger.warning("trace of example %s failed: %s", eid, reason)
            else:
                append_jsonl(log, {"example_id": eid, "trace": trace, **record})
                traces[eid] = trace
            bar.update(1)
            bar.set_postfix(failed=len(failed), refresh=False)

        try:
            await run_bounded(rows, handle, concurrency=concurrency)
        finally:
            await client.aclose()
    return traces, failed


def _split_files(input_dir: str | Path, splits: list[str] | None) -> dict[str, Path]:
    folder = Path(input_dir)
    if not folder.is_dir():
        raise DataError(
            "no such folder; give a folder written by `humanlm data prepare`", file=str(folder)
        )
    if splits:
        files = {name: folder / f"{name}.parquet" for name in dict.fromkeys(splits)}
        missing = [name for name, path in files.items() if not path.is_file()]
        if missing:
            raise DataError(
                f"no {', '.join(m + '.parquet' for m in missing)} in this folder", file=str(folder)
            )
        return files
    files = {p.stem: p for p in sorted(folder.glob("*.parquet")) if not p.name.startswith(".")}
    if not files:
        raise DataError(
            "no <split>.parquet files; run `humanlm data prepare` first", file=str(folder)
        )
    return files


def _read_split(path: Path) -> pa.Table:
    """A prepared split as a table with exactly the prepared schema (see `load_prepared`)."""
    table = read_prepared_table(path)
    try:
        return table.select(list(PREPARED_COLUMNS)).cast(PREPARED_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise DataError(
            f"columns do not match the prepared schema ({err})", file=str(path)
        ) from None


def _quotes(trace: str, reply: str) -> bool:
    """Whether the trace repeats the reply or a run of `_QUOTE_WORDS` of its words."""
    trace_words, reply_words = _words(trace), _words(reply)
    if not reply_words:
        return False
    if trace_words == reply_words:
        return True
    n = min(len(reply_words), _QUOTE_WORDS)
    if n < 6:  # a short reply ("Yes.") may well appear in an honest trace
        return False
    grams = {tuple(reply_words[i : i + n]) for i in range(len(reply_words) - n + 1)}
    return any(tuple(trace_words[i : i + n]) in grams for i in range(len(trace_words) - n + 1))


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", " ", text.casefold()).split()


def _shorten(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
