"""The ``humanlm`` command: a thin Typer front over the ``run_*`` functions.

Run ``humanlm --help`` for the command list; each command has its own ``--help`` with examples.
A usage mistake or a user-fixable problem prints one line and exits with code 2; an unexpected
error keeps its traceback and says how to report it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from humanlm.errors import HumanlmError
from humanlm.files import disk_full_error, is_disk_full

app = typer.Typer(
    name="humanlm",  # its help: the callback's docstring, with examples
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text as written: "[@URL]" is not markup
)

ISSUES_URL = "https://github.com/humanlm/humanlm/issues"
# Libraries that log every HTTP request at INFO; quiet unless --verbose.
_CHATTY = ("httpx", "httpcore", "openai", "urllib3", "LiteLLM")
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/\s@]+@")


def _package_version() -> str:
    try:
        return version("humanlm")
    except PackageNotFoundError:  # running from a source tree without an install
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"humanlm {_package_version()}")
        raise typer.Exit(0)


class _RedactURLs(logging.Filter):
    """Drop ``user:password@`` from URLs in log lines (a base URL may carry credentials)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message and "://" in message:
            record.msg, record.args = _URL_CREDENTIALS.sub(r"\1", message), None
        return True


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in root.handlers:
        if not any(isinstance(f, _RedactURLs) for f in handler.filters):
            handler.addFilter(_RedactURLs())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs, HTTP requests included.")
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Train, evaluate and run user simulators (HumanLM) on Humanual-format data.

    \b
    Examples:
      humanlm demo
      humanlm data prepare --input rows.jsonl --dataset reddit --out data/reddit
      humanlm eval --model hf:runs/demo/humanlm/model --data demo --judge embedding:minilm
    """
    _configure_logging(verbose)


def _register() -> None:
    # Sub-apps import lazily-heavy modules inside their commands, so `--help` stays fast.
    # Once per process: `main` may be called many times (from Python, from tests), and each
    # registration would add the commands to `app` again.
    if app.registered_commands:
        return
    from humanlm.cli import configs as configs_cli
    from humanlm.cli import data as data_cli
    from humanlm.cli import eval as eval_cli
    from humanlm.cli import judge as judge_cli
    from humanlm.cli import model as model_cli
    from humanlm.cli import report as report_cli
    from humanlm.cli import serve as serve_cli
    from humanlm.cli import simulate as simulate_cli
    from humanlm.cli import train as train_cli

    app.add_typer(data_cli.app, name="data")
    app.add_typer(configs_cli.app, name="configs")
    app.add_typer(model_cli.app, name="model")
    app.command("judge")(judge_cli.judge)
    app.command("eval")(eval_cli.eval_command)
    app.command("report")(report_cli.report)
    app.command("train")(train_cli.train)
    app.command("demo")(train_cli.demo)
    app.command("serve")(serve_cli.serve)
    app.command("simulate")(simulate_cli.simulate)


def _usage_line(err: Exception) -> str:
    """One line for a click usage error: what was wrong and what to type for help."""
    message = " ".join(err.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(err, "ctx", None)
    path = ctx.command_path if ctx is not None else "humanlm"
    return f"error: {message} (see '{path} --help')"


def _failed_path(err: BaseException) -> str | None:
    """The file named by ``err`` or by an operating-system error it was raised from."""
    seen: BaseException | None = err
    for _ in range(8):  # a bounded walk down the chain of wrapped errors
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.filename:
            return str(seen.filename)
        seen = seen.__cause__ or seen.__context__
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point; exit codes: 0 done, 1 failed, 2 usage or fixable problem."""
    from typer._click import exceptions as click_errors

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _configure_logging(verbose=False)
    _register()
    try:
        result = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except HumanlmError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except click_errors.NoArgsIsHelpError as err:  # a bare group: its help, and success
        typer.echo(err.ctx.get_help())
        sys.exit(0)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except click_errors.ClickException as err:
        typer.echo(_usage_line(err), err=True)
        sys.exit(2)
    except (typer.Exit, SystemExit) as done:
        code = getattr(done, "exit_code", getattr(done, "code", 0))
        sys.exit(code or 0)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as err:
        if is_disk_full(err):  # a library's own write (weights, a cache) found the disk full
            typer.echo(f"error: {disk_full_error(_failed_path(err))}", err=True)
            sys.exit(2)
        import traceback

        traceback.print_exc()
        typer.echo(
            f"humanlm {_package_version()} hit an unexpected error (a bug, not your input): "
            f"please report it with the command and the traceback above at {ISSUES_URL}",
            err=True,
        )
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
