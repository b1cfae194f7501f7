"""``humanlm judge``: score a JSONL file of candidate groups with a judge.

Run it as ``humanlm judge --help`` (registered by ``cli/main.py`` with
``app.add_typer(judge_cli.app, name="judge")``) or directly as
``python -m humanlm.cli.judge --help``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from humanlm.errors import HumanlmError

app = typer.Typer(
    name="judge",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_HELP = """Score candidates against the real reply with a judge and write one row per input row.

Input rows: {example_id, state, context: [{name, content}], ground_truth, candidates: [str]}
(aspects mode: one candidate, the response; state optional). Output rows: the input plus
scores (a list, or {state: score} in aspects mode; null = unscored), reason, prompt_version
and judge. judge_ledger.json (calls, tokens, failures, cost) is written next to OUT.
Unscored rows do not fail the run; unusable input or configuration exits with code 2.

\b
Examples:
  humanlm judge -i groups.jsonl -o out/scored.jsonl --judge openai:gpt-5-mini --temperature 1
  humanlm judge -i groups.jsonl -o out/scored.jsonl \\
      --judge openai:Qwen/Qwen3-8B@http://127.0.0.1:8000/v1 --concurrency 64
  humanlm judge -i responses.jsonl -o out/aspects.jsonl --mode aspects \\
      --judge litellm:anthropic/claude-haiku-4-5 --api-key-env ANTHROPIC_API_KEY
  humanlm judge -i groups.jsonl -o out/sim.jsonl --judge embedding:minilm --no-cache
"""


@app.callback(invoke_without_command=True, help=_HELP)
def judge(
    input: Path = typer.Option(..., "--input", "-i", help="Input JSONL of groups."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL (written atomically)."),
    judge_spec: str = typer.Option(
        ...,
        "--judge",
        help="openai:MODEL[@BASE_URL], litellm:PROVIDER/MODEL or embedding:minilm.",
    ),
    mode: str = typer.Option("group", "--mode", help="group or aspects."),
    concurrency: int = typer.Option(16, "--concurrency", min=1, help="Judge calls in flight."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the cache."),
    cache: Path | None = typer.Option(
        None, "--cache", help="SQLite cache file [default: judge_cache.sqlite next to OUT]."
    ),
    temperature: float | None = typer.Option(
        None, "--temperature", help="Judge temperature [default: the server's]."
    ),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Variable holding the API key [default: OPENAI_API_KEY]."
    ),
    timeout: float = typer.Option(120.0, "--timeout", help="Deadline of one judge call (s)."),
    max_retries: int = typer.Option(4, "--max-retries", min=0, help="Retries per call."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    from humanlm.judge import build_judge, run_judge

    cache_path = None if no_cache else (cache or out.parent / "judge_cache.sqlite")
    judge_ = build_judge(
        judge_spec,
        temperature=temperature,
        api_key_env=api_key_env,
        concurrency=concurrency,
        timeout_s=timeout,
        max_retries=max_retries,
        cache=cache_path,
    )
    result = run_judge(
        input, out, judge=judge_, mode=mode, use_cache=not no_cache, progress=progress
    )
    typer.echo(f"wrote {result.rows} rows to {result.out_path} ({result.unscored_rows} unscored)")
    typer.echo(result.summary)


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
