"""The ``humanlm`` command: a thin Typer front over the ``run_*`` functions.

Run ``humanlm --help`` for the command list; each command has its own ``--help`` with examples.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from humanlm.errors import HumanlmError

app = typer.Typer(
    name="humanlm",
    help="Train and evaluate user simulators (HumanLM) on Humanual-format data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Sub-apps import lazily-heavy modules inside their commands, so `--help` stays fast.
    from humanlm.cli import data as data_cli
    from humanlm.cli import eval as eval_cli
    from humanlm.cli import judge as judge_cli
    from humanlm.cli import model as model_cli
    from humanlm.cli import report as report_cli
    from humanlm.cli import serve as serve_cli
    from humanlm.cli import simulate as simulate_cli
    from humanlm.cli import train as train_cli

    app.add_typer(data_cli.app, name="data")
    app.add_typer(model_cli.app, name="model")
    app.command("judge")(judge_cli.judge)
    app.command("eval")(eval_cli.eval_command)
    app.command("report")(report_cli.report)
    app.command("train")(train_cli.train)
    app.command("demo")(train_cli.demo)
    app.command("serve")(serve_cli.serve)
    app.command("simulate")(simulate_cli.simulate)


def main() -> None:
    """Console-script entry point: user-fixable errors print one message and exit with code 2."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _register()
    try:
        app(standalone_mode=False)
    except HumanlmError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except (typer.Exit, SystemExit) as done:
        code = getattr(done, "exit_code", getattr(done, "code", 0))
        sys.exit(code or 0)
    except Exception as err:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":
    main()
