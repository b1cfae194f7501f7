"""``humanlm data``: prepare Humanual-format data and show exactly what the model sees.

Examples:
    humanlm data prepare --input snap-stanford/humanual-opinion --dataset reddit --out data/reddit
    humanlm data show data/reddit/test.parquet --row 0 --state response
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Prepare Humanual-format data and inspect prepared rows.",
    no_args_is_help=True,
)

# One paragraph per example: Typer joins the lines of a paragraph.
_PREPARE_EXAMPLES = """Examples:

humanlm data prepare --input snap-stanford/humanual-opinion --dataset reddit --out data/reddit

humanlm data prepare --input rows.jsonl --dataset enron --out data/enron --split test

humanlm data prepare --input raw_folder/ --dataset generic --out data/mine --limit 100

humanlm data prepare --input reddit --dataset reddit --out data/reddit --split test --persona-dropout 0.3,0.3
"""

_SHOW_EXAMPLES = """Examples:

humanlm data show data/reddit/test.parquet --row 3 --state response

humanlm data show data/reddit/train.parquet --row 0 --state stance --state-set sebvgcr

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
            "'opinion' work too); 'auto' reads each row's dataset column.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for <split>.parquet.")],
    split: Annotated[
        str | None,
        typer.Option(help="Split a single file holds (default train); for a folder/hub, only it."),
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
    seed: Annotated[int, typer.Option(help="Seed of the persona dropout.")] = 0,
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
    state_set: Annotated[str, typer.Option(help="sebvgcr, r, r_no_tag or think_r.")] = "sebvgcr",
) -> None:
    """Print exactly the prompt text the model sees for one row and state, generation prompt included."""
    from humanlm.data.prepare import load_prepared
    from humanlm.errors import ConfigError, DataError
    from humanlm.states import build_messages, get_state, get_state_set, is_thinking
    from humanlm.states.template import render_chat

    chosen_set = get_state_set(state_set)
    get_state(state)
    if state not in chosen_set.states:
        raise ConfigError(
            f"state {state!r} is not part of state set {state_set!r} "
            f"({', '.join(chosen_set.states)})"
        )
    rows = load_prepared(file)
    if row >= len(rows):
        raise DataError(f"row {row} does not exist ({len(rows)} rows)", file=str(file))
    tok = _load_tokenizer(tokenizer) if tokenizer is not None else None
    text = render_chat(
        build_messages(rows[row], state, state_set=chosen_set),
        thinking=is_thinking(state, thinking=chosen_set.thinking),
        tokenizer=tok,
    )
    typer.echo(text, nl=False)


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
