"""``humanlm data``: build, check and prepare Humanual-format data; show what the model sees.

Examples:
    humanlm data build --input dump.jsonl --out data/mine --llm openai:gpt-5-mini
    humanlm data personas --input data/mine --llm openai:gpt-5-mini --concurrency 16
    humanlm data prepare --input rows.jsonl --dataset generic --out data/mine-eval --eval-only
    humanlm data validate data/mine
    humanlm data prepare --input snap-stanford/humanual-opinion --dataset reddit --out data/reddit
    humanlm data traces --input data/reddit --out data/reddit_think --llm openai:gpt-5-mini
    humanlm data show data/reddit/test.parquet --row 0 --state response
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from humanlm.config import default_value
from humanlm.extras import require_spec_extra
from humanlm.generate.protocol import GenerationSettings
from humanlm.llm.limits import RetryPolicy

app = typer.Typer(
    help="Build Humanual-format data from raw user data, validate it, prepare it, inspect rows."
    + "\n\n\b\n"
    + __doc__.split("\n\n", 1)[1].replace("    ", "  ").rstrip(),
    no_args_is_help=True,
)

# One paragraph per example: Typer joins the lines of a paragraph.
_PREPARE_EXAMPLES = """Examples:

humanlm data prepare --input snap-stanford/humanual-opinion --dataset reddit --out data/reddit

humanlm data prepare --input rows.jsonl --dataset enron --out data/enron --eval-only

humanlm data prepare --input rows.jsonl --dataset enron --out data/enron-train --split train

humanlm data prepare --input raw_folder/ --dataset generic --out data/mine --limit 100

humanlm data prepare --input reddit --dataset reddit --out data/reddit --split test --persona-dropout 0.3,0.3

humanlm data prepare --input chat --dataset wildchat --out data/wildchat --no-end-examples

humanlm data prepare --input reddit --dataset reddit --out data/reddit --holdout-users 0.1 --seed 1
"""

_SHOW_EXAMPLES = """Examples:

humanlm data show data/reddit/test.parquet --row 3 --state response

humanlm data show data/reddit/train.parquet --row 0 --state stance --mode humanlm

humanlm data show data/reddit/test.parquet --row 0 --mode grpo-think

humanlm data show data/reddit/test.parquet --row 0 --tokenizer runs/tok
"""


@app.command(epilog=_PREPARE_EXAMPLES)
def prepare(
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="A .parquet/.jsonl/.json file, a folder of train/val/test files, a hub repo id, "
            "or a dataset id / hub name (downloads its hub repo).",
        ),
    ],
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            "-d",
            help="reddit, amazon, medium, youtube, wildchat, enron or generic (hub names such as "
            "'opinion' work too); 'auto' reads each row's dataset column, else generic.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for <split>.parquet.")],
    split: Annotated[
        str | None,
        typer.Option(
            help="The split a single file holds; for a folder/hub, only this split.",
            show_default="train for a single file, every split of a folder",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=0, help="Write at most N rows per split.")
    ] = None,
    persona_dropout: Annotated[
        str | None,
        typer.Option(
            metavar="FIELD_P,ITEM_P",
            help="Drop persona fields / items with these probabilities (robustness split; "
            "files are named <split>_dropout.parquet).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the persona dropout and held-out users.")] = 0,
    end_examples: Annotated[
        bool | None,
        typer.Option(
            "--end-examples/--no-end-examples",
            help="End examples (reply: the end signal <|endconversation|>): keep such rows and "
            "add one per conversation whose last row holds the assistant's answer in "
            "metadata.assistant_reply.",
            show_default="on for wildchat and for end rows written by `data build`, else off",
        ),
    ] = None,
    holdout_users: Annotated[
        str | None,
        typer.Option(
            metavar="K|FRACTION",
            help="Hold out K users (or this fraction of them), drawn with --seed: all their "
            "rows go to test_unseen.parquet, and no other split has them.",
        ),
    ] = None,
    eval_only: Annotated[
        bool,
        typer.Option(
            "--eval-only",
            help="An evaluation-only dataset: every row goes to test.parquet, the split "
            "`humanlm eval` reads (not with --split or --holdout-users).",
        ),
    ] = False,
) -> None:
    """Validate a source, render every row and write DIR/<split>.parquet files."""
    from humanlm.data.prepare import run_prepare

    summary = run_prepare(
        source=input,
        dataset=dataset,
        out_dir=out,
        split=split,
        limit=limit,
        persona_dropout=_parse_dropout(persona_dropout),
        seed=seed,
        end_examples=end_examples,
        holdout_users=_parse_holdout_users(holdout_users),
        eval_only=eval_only,
        show_progress=True,
    )
    typer.echo(summary.describe())


@app.command(epilog=_SHOW_EXAMPLES)
def show(
    file: Annotated[Path, typer.Argument(help="A prepared .parquet file.")],
    row: Annotated[int, typer.Option(min=0, help="0-based row number.")] = 0,
    state: Annotated[str, typer.Option(help="The state to prompt for (e.g. response).")] = (
        "response"
    ),
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="Render with this tokenizer's chat template instead of the bundled one."),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(help="Training mode: humanlm, grpo, grpo-think, sft or sft-think."),
    ] = "humanlm",
) -> None:
    """Print exactly the prompt text the model sees for one row and state, generation prompt included.

    The mode decides the state set and whether the response prompt opens a thinking block, as in
    training and evaluation.
    """
    from humanlm.data.prepare import load_prepared
    from humanlm.errors import ConfigError, DataError
    from humanlm.states import build_messages, get_mode, get_state, get_state_set, is_thinking
    from humanlm.states.template import render_chat

    chosen = get_mode(mode)
    chosen_set = get_state_set(chosen.state_set)
    get_state(state)
    if state not in chosen_set.states:
        raise ConfigError(
            f"state {state!r} is not trained in mode {mode!r} ({', '.join(chosen_set.states)})"
        )
    rows = load_prepared(file)
    if row >= len(rows):
        raise DataError(f"row {row} does not exist ({len(rows)} rows)", file=str(file))
    tok = _load_tokenizer(tokenizer) if tokenizer is not None else None
    text = render_chat(
        build_messages(rows[row], state, state_set=chosen_set),
        thinking=is_thinking(state, thinking=chosen.thinking),
        tokenizer=tok,
    )
    typer.echo(text, nl=False)


def _parse_holdout_users(value: str | None) -> int | float | None:
    from humanlm.data.prepare import parse_holdout_users

    if value is None:
        return None
    try:
        return parse_holdout_users(value)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--holdout-users") from None


def _parse_dropout(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        field_p, item_p = (float(part) for part in value.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"expected FIELD_P,ITEM_P such as 0.3,0.2, got {value!r}",
            param_hint="--persona-dropout",
        ) from None
    if not (0.0 <= field_p <= 1.0 and 0.0 <= item_p <= 1.0):
        raise typer.BadParameter(
            f"probabilities must be in [0, 1], got {value!r}", param_hint="--persona-dropout"
        )
    return field_p, item_p


def _load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    from humanlm.errors import ConfigError

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load a tokenizer from {path}: {err}") from None


# Options of the commands that call a model (build, personas, traces), declared once.
ApiKeyEnv = Annotated[
    str | None,
    typer.Option(
        help="Variable holding the --llm key; none: a key-less server.",
        show_default="OPENAI_API_KEY for openai:, the provider's own for litellm:",
    ),
]
CallsInFlight = Annotated[int, typer.Option(min=1, help="Calls in flight.")]
# Requests in flight to one model, in every command: the generation settings' default.
CONCURRENCY: int = default_value(GenerationSettings, "concurrency")
PersonaModel = Annotated[
    str | None,
    typer.Option(help="Persona model: openai:MODEL[@URL] or litellm:PROVIDER/MODEL."),
]
MaxRetries = Annotated[
    int, typer.Option("--max-retries", min=0, help="Transport retries per call.")
]
RETRIES: int = default_value(RetryPolicy, "max_retries")
PersonaCache = Annotated[
    Path | None, typer.Option("--persona-cache", help="SQLite cache shared across folders.")
]
Timeout = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Deadline of one call, retries included, s.")
]
# The deadlines of one persona and one trace call (their policies in humanlm.enrich).
PERSONA_TIMEOUT_S = 600.0
TRACE_TIMEOUT_S = 300.0


_BUILD_EXAMPLES = """Examples:

humanlm data build --input dump.jsonl --out data/mine --llm openai:gpt-5-mini

humanlm data build -i comments.jsonl -i submissions.jsonl --layout reddit --out data/aita --no-personas

humanlm data build -i mails.csv --layout enron --out data/mail --fixed-persona "An office worker."

humanlm data build -i chats.parquet --columns thread_id=conv,author=user --split-by turn --out data/chat --no-personas

See docs/data_build.md for the input format and every layout.
"""


@app.command(epilog=_BUILD_EXAMPLES)
def build(
    input: Annotated[
        list[str],
        typer.Option(
            "--input",
            "-i",
            help="Item files (.jsonl/.jsonl.gz/.json/.parquet/.csv) or folders; repeatable.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    layout: Annotated[
        str,
        typer.Option(
            help="Column layout: generic, reddit, enron, amazon, youtube, medium, wildchat."
        ),
    ] = "generic",
    columns: Annotated[
        list[str] | None,
        typer.Option(
            help="FIELD=EXPR overrides, comma-separated (item_id=id,author=user,text=body|title+selftext)."
        ),
    ] = None,
    keep_columns: Annotated[
        str, typer.Option(help="More source columns to copy into item metadata (comma-separated).")
    ] = "",
    context: Annotated[
        str, typer.Option(help="auto, chain (parent links) or thread (time order).")
    ] = "auto",
    split_by: Annotated[str, typer.Option(help="thread, turn or user.")] = "thread",
    split_ratios: Annotated[
        str, typer.Option("--split-ratios", "--ratios", help="TRAIN/VAL/TEST shares.")
    ] = "90/2/8",
    seen_users: Annotated[
        bool,
        typer.Option("--seen-users/--no-seen-users", help="Keep val/test to users seen in train."),
    ] = True,
    min_replies_per_user: Annotated[
        int, typer.Option("--min-replies-per-user", "--min-replies", min=1)
    ] = 1,
    max_replies_per_user: Annotated[
        int | None, typer.Option("--max-replies-per-user", "--max-replies", min=1)
    ] = None,
    max_reply_chars: Annotated[int | None, typer.Option(min=1)] = None,
    max_reply_words: Annotated[int | None, typer.Option(min=1)] = None,
    end_examples: Annotated[
        bool | None,
        typer.Option(
            "--end-examples/--no-end-examples",
            help="Add one row per conversation that ends with the assistant's turn, its reply "
            "the end signal <|endconversation|>.",
            show_default="on for the wildchat layout",
        ),
    ] = None,
    hash_authors: Annotated[bool, typer.Option(help="Replace author names by pseudonyms.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the user-held-out split.")] = 0,
    llm: PersonaModel = None,
    fixed_persona: Annotated[
        str | None, typer.Option(help="One persona text for every row.")
    ] = None,
    personas: Annotated[
        bool, typer.Option("--personas/--no-personas", help="Write personas.")
    ] = True,
    k: Annotated[int, typer.Option("--k", min=1, help="Replies summarised per user.")] = 20,
    concurrency: CallsInFlight = CONCURRENCY,
    api_key_env: ApiKeyEnv = None,
    persona_cache: PersonaCache = None,
    timeout: Timeout = PERSONA_TIMEOUT_S,
    max_retries: MaxRetries = RETRIES,
) -> None:
    """Build train/val/test Humanual rows (with personas and a dataset card) from raw items."""
    from humanlm.ingest.dataset import run_build
    from humanlm.ingest.raw_formats import parse_columns
    from humanlm.ingest.splits import parse_ratios

    if personas and fixed_persona is None:
        require_spec_extra(llm, needed_by="--llm")

    summary = run_build(
        inputs=input,
        out_dir=out,
        layout=layout,
        columns=parse_columns(columns or []),
        keep_columns=[c.strip() for c in keep_columns.split(",") if c.strip()],
        context=context,
        split_by=split_by,
        ratios=parse_ratios(split_ratios),
        seen_users=seen_users,
        min_replies=min_replies_per_user,
        max_replies=max_replies_per_user,
        max_reply_chars=max_reply_chars,
        max_reply_words=max_reply_words,
        end_examples=end_examples,
        hash_authors=hash_authors,
        seed=seed,
        llm=llm,
        fixed_persona=fixed_persona,
        personas=personas,
        k=k,
        concurrency=concurrency,
        api_key_env=api_key_env,
        persona_cache=persona_cache,
        persona_retry=_retry(timeout, max_retries, default_timeout=PERSONA_TIMEOUT_S),
        show_progress=True,
    )
    typer.echo(summary.describe())
    if summary.personas is not None and summary.personas.failed:
        typer.echo(f"error: {summary.personas.resume_hint(llm or 'SPEC')}", err=True)
        raise typer.Exit(1)


def _retry(timeout: float, max_retries: int, *, default_timeout: float) -> Any:
    """The retry policy of the persona and trace calls (``None``: their defaults)."""
    if timeout == default_timeout and max_retries == RETRIES:
        return None
    return RetryPolicy(max_retries=max_retries, timeout_s=timeout, request_timeout_s=timeout)


_PERSONAS_EXAMPLES = """Examples:

humanlm data personas --input data/mine --llm openai:gpt-5-mini

humanlm data personas -i data/mine --llm openai:Qwen/Qwen3-32B@http://127.0.0.1:8000/v1 --api-key-env none --concurrency 64

humanlm data personas -i data/mine --llm litellm:anthropic/claude-haiku-4-5 --persona-cache personas.sqlite

humanlm data personas -i data/mine --fixed "A regular reader of the forum."
"""


@app.command(name="personas", epilog=_PERSONAS_EXAMPLES)
def personas_command(
    input: Annotated[Path, typer.Option("--input", "-i", help="A folder written by `data build`.")],
    llm: PersonaModel = None,
    fixed: Annotated[
        str | None,
        typer.Option("--fixed", "--fixed-persona", help="One persona text for every row instead."),
    ] = None,
    k: Annotated[
        int, typer.Option("--k", min=1, help="Earliest training replies summarised per user.")
    ] = 20,
    concurrency: CallsInFlight = CONCURRENCY,
    api_key_env: ApiKeyEnv = None,
    persona_cache: PersonaCache = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Summarise every user again (ignore personas.jsonl).")
    ] = False,
    timeout: Timeout = PERSONA_TIMEOUT_S,
    max_retries: MaxRetries = RETRIES,
) -> None:
    """(Re)write the personas of a built folder; resumes from its personas.jsonl.

    A rerun asks only for the users without a persona; exit code 1 while some users have none.
    """
    from humanlm.enrich.personas import run_personas

    if fixed is None:
        require_spec_extra(llm, needed_by="--llm")
    summary = run_personas(
        data_dir=input,
        llm=llm,
        fixed=fixed,
        k=k,
        concurrency=concurrency,
        api_key_env=api_key_env,
        cache=persona_cache,
        retry=_retry(timeout, max_retries, default_timeout=PERSONA_TIMEOUT_S),
        show_progress=True,
        fresh=fresh,
    )
    typer.echo(summary.describe())
    if summary.failed:
        typer.echo(f"error: {summary.resume_hint(llm or 'SPEC')}", err=True)
        raise typer.Exit(1)


_VALIDATE_EXAMPLES = """Examples:

humanlm data validate data/mine

humanlm data validate rows.jsonl --dataset reddit --split test

humanlm data validate snap-stanford/humanual-opinion --split test --show 10
"""


@app.command(epilog=_VALIDATE_EXAMPLES)
def validate(
    source: Annotated[
        str, typer.Argument(help="A file, a folder of split files or a hub repo id.")
    ],
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", "-d", help="Dataset id.", show_default="each row's, else generic"
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Split a single file holds / only this split.")
    ] = None,
    show: Annotated[int, typer.Option(min=0, help="Print at most N problems.")] = 50,
) -> None:
    """Check every row of a Humanual-format source; exit 1 when there are problems, no rows, or
    rows still waiting for personas (persona_failed.parquet)."""
    from humanlm.data.validate import validate_source

    report = validate_source(source, dataset=dataset, split=split)
    typer.echo(report.describe(max_problems=show))
    if not report.ok:
        raise typer.Exit(1)
    if (why := report.incomplete()) is not None:
        typer.echo(f"error: {why}", err=True)
        raise typer.Exit(1)


_TRACES_EXAMPLES = """Examples:

humanlm data traces --input data/reddit --out data/reddit_think --llm openai:gpt-5-mini

humanlm data traces -i data/reddit -o data/reddit_think --llm openai:Qwen/Qwen3-32B@http://127.0.0.1:8000/v1 --concurrency 32

humanlm data traces -i data/mail -o data/mail_think --llm litellm:anthropic/claude-haiku-4-5 --api-key-env ANTHROPIC_API_KEY --split train --split val

Rerun the same command to resume: examples in OUT/traces.jsonl are not asked again. See docs/data_build.md.
"""


@app.command(name="traces", epilog=_TRACES_EXAMPLES)
def traces_command(
    input: Annotated[
        Path, typer.Option("--input", "-i", help="A folder written by `data prepare`.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output folder: <split>.parquet, traces.jsonl, traces_summary.json."
        ),
    ],
    llm: Annotated[
        str, typer.Option(help="Trace model: openai:MODEL, openai:MODEL@URL or litellm:P/M.")
    ],
    concurrency: CallsInFlight = CONCURRENCY,
    api_key_env: ApiKeyEnv = None,
    split: Annotated[
        list[str] | None,
        typer.Option("--split", help="Only this split (repeatable; default: every file)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Regenerate traces that input rows already have.")
    ] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Ask for every trace again (ignore traces.jsonl).")
    ] = False,
    timeout: Timeout = TRACE_TIMEOUT_S,
    max_retries: MaxRetries = RETRIES,
) -> None:
    """Write a 2-4 sentence thinking trace per example (for sft-think); resumable.

    Exit code 1 while some examples have no trace (rerun the same command to retry them).
    """
    from humanlm.enrich.traces import run_traces

    require_spec_extra(llm, needed_by="--llm")
    summary = run_traces(
        input_dir=input,
        out_dir=out,
        llm=llm,
        splits=split,
        overwrite=overwrite,
        concurrency=concurrency,
        api_key_env=api_key_env,
        retry=_retry(timeout, max_retries, default_timeout=TRACE_TIMEOUT_S),
        show_progress=True,
        fresh=fresh,
    )
    typer.echo(summary.describe())
    if summary.failed:
        typer.echo(
            f"error: {len(summary.failed):,} examples have no trace; run the same command again "
            "to retry only them",
            err=True,
        )
        raise typer.Exit(1)
