"""``humanlm judge``: score a JSONL file of candidate groups with a judge.

Run it as ``humanlm judge --help`` or directly as ``python -m humanlm.cli.judge --help``.
``cli/main.py`` registers it with ``app.add_typer(judge_cli.app, name="judge")`` (``app`` is a
single-command Typer: its callback is the command) or, equivalently,
``app.command("judge")(judge_cli.judge)``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from humanlm.config import JudgeConfig, default_value
from humanlm.errors import HumanlmError

app = typer.Typer(
    name="judge",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_HELP = """Score candidates against the real reply with a judge and write one row per input row.

Input rows: {example_id, state, context: [{name, content}], ground_truth, candidates: \\[str]}
(aspects mode: one candidate, the response; state optional). Output rows: the input plus
scores (a list, or {state: score} in aspects mode; null = unscored), reason, prompt_version
and judge. judge_ledger.json (calls, tokens, failures, cost) is written next to OUT.
Unscored rows do not fail the run, but a run in which the judge scored no candidate at all
exits with code 1 (--allow-unscored: 0); unusable input or configuration exits with code 2.
Running the same command again judges only the rows not fully scored (--fresh: all rows).

\b
Examples:
  humanlm judge -i groups.jsonl -o out/scored.jsonl --judge openai:gpt-5-mini --temperature 1
  humanlm judge -i groups.jsonl -o out/scored.jsonl \\
      --judge openai:Qwen/Qwen3-8B@http://127.0.0.1:8000/v1 --concurrency 64
  humanlm judge -i responses.jsonl -o out/aspects.jsonl --mode aspects \\
      --judge litellm:anthropic/claude-haiku-4-5 --api-key-env ANTHROPIC_API_KEY
  humanlm judge -i groups.jsonl -o out/sim.jsonl --judge embedding:minilm --no-cache
"""


def _default(name: str) -> Any:
    """The ``JudgeConfig`` default of ``name``: each option's default is the block's own."""
    return default_value(JudgeConfig, name)


def _judge_config(spec: str, flags: dict[str, Any]) -> JudgeConfig:
    """The judge block of the flags; unset ones keep ``JudgeConfig``'s defaults."""
    given = {key: value for key, value in flags.items() if value is not None}
    if given.get("max_tokens") == 0:  # 0: send no limit
        given["max_tokens"] = None
    return JudgeConfig(spec=spec, **given)


@app.callback(invoke_without_command=True, help=_HELP)
def judge(
    input: Annotated[Path, typer.Option("--input", "-i", help="Input JSONL of groups.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output JSONL (written atomically).")],
    judge_spec: Annotated[
        str,
        typer.Option(
            "--judge", help="openai:MODEL[@BASE_URL], litellm:PROVIDER/MODEL or embedding:minilm."
        ),
    ],
    mode: Annotated[str, typer.Option("--mode", help="group or aspects.")] = "group",
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Judge calls in flight.")
    ] = _default("concurrency"),
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the cache.")
    ] = False,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache", help="SQLite cache file.", show_default="judge_cache.sqlite next to OUT"
        ),
    ] = None,
    temperature: Annotated[
        float, typer.Option("--temperature", help="Judge temperature.")
    ] = _default("temperature"),
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            help="Variable holding the API key; none: a key-less server.",
            show_default="OPENAI_API_KEY for openai:, the provider's own for litellm:",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Deadline of one judge call, retries included, s."),
    ] = _default("timeout_s"),
    max_retries: Annotated[
        int, typer.Option("--max-retries", min=0, help="Retries per judge call.")
    ] = _default("max_retries"),
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=0, help="Judge reply limit sent; 0: none.")
    ] = _default("max_tokens"),
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Judge every row again instead of reusing scored rows."),
    ] = False,
    allow_unscored: Annotated[
        bool,
        typer.Option("--allow-unscored", help="Exit 0 even when the judge scored no candidate."),
    ] = False,
) -> None:
    flags = {
        "concurrency": concurrency,
        "temperature": temperature,
        "api_key_env": api_key_env,
        "timeout_s": timeout,
        "max_retries": max_retries,
        "max_tokens": max_tokens,
    }
    from humanlm.eval.config import check_judge_runnable
    from humanlm.files import check_output_file
    from humanlm.judge import build_judge, run_judge
    from humanlm.lock import output_lock

    config = _judge_config(judge_spec, flags)
    check_judge_runnable(config, flag="--api-key-env")  # before any file is written
    check_output_file(out, what="judge --out")
    cache_path = None if no_cache else (cache or out.parent / "judge_cache.sqlite")
    with output_lock(out, command="judge", file=True):  # before the cache opens or a model loads
        judge_ = build_judge(config, cache=cache_path)
        result = run_judge(
            input,
            out,
            judge=judge_,
            mode=mode,
            use_cache=not no_cache,
            progress=progress,
            fresh=fresh,
        )
    reused = f", {result.reused_rows} reused from an earlier run" if result.reused_rows else ""
    typer.echo(
        f"wrote {result.rows} rows to {result.out_path} ({result.unscored_rows} unscored{reused})"
    )
    if result.unscored_rows:
        typer.echo("run the same command again to judge the unscored rows again")
    typer.echo(result.summary)
    if result.nothing_scored and not allow_unscored:
        typer.echo(
            f"error: nothing scored: the judge scored none of the {result.unscored_candidates} "
            f"candidates it was asked about (reasons in {result.out_path}); re-run the same "
            "command to judge them again, or pass --allow-unscored to exit 0",
            err=True,
        )
        raise typer.Exit(1)


# So that registering the function directly (``app.command("judge")(judge)``) keeps the help.
judge.__doc__ = _HELP


def main() -> None:
    """Stand-alone entry point: user-fixable errors print one line and exit with code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=False)
    except HumanlmError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except Exception as err:
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":
    main()
