"""``humanlm configs``: list, print and copy the configs shipped inside the package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    help="""The shipped configs: paper presets, accelerate launch configs, the demo preset.

\b
Examples:
  humanlm configs list
  humanlm configs show paper/reddit_humanlm.yaml
  humanlm configs copy accelerate/fsdp_8gpu.yaml   # writes configs/accelerate/fsdp_8gpu.yaml
""",
    no_args_is_help=True,
    add_completion=False,
)

_SUMMARY_CHARS = 88
# Where copies go without a DEST: the paths the docs' launch lines read.
_LOCAL = Path("configs")


def _summary(path: Path) -> str:
    """The first comment line of a config: what it runs."""
    first = path.read_text(encoding="utf-8").splitlines()[:1]
    text = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 3] + "..."


@app.command("list")
def list_configs(
    group: Annotated[
        str | None, typer.Argument(help="Only this folder: paper or accelerate.")
    ] = None,
    names_only: Annotated[
        bool, typer.Option("--names-only", help="One name a line, nothing else (for scripts).")
    ] = False,
) -> None:
    """List the shipped configs by name, with the first line of each (what it runs).

    A name works wherever a config file does: humanlm train --config NAME.

    \b
    Examples:
      humanlm configs list
      humanlm configs list paper
      humanlm configs list accelerate --names-only
    """
    from humanlm.configs import config_names, configs_dir

    names = config_names(group)
    width = max(len(n) for n in names)
    for name in names:
        line = name if names_only else f"{name:<{width}}  {_summary(configs_dir() / name)}"
        typer.echo(line.rstrip())


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A name from `humanlm configs list`.")],
    path: Annotated[
        bool, typer.Option("--path", help="Print where the file lies instead of its text.")
    ] = False,
) -> None:
    """Print a shipped config (or, with --path, its location in the installed package).

    \b
    Examples:
      humanlm configs show paper/reddit_humanlm.yaml
      humanlm configs show demo
      accelerate launch --config_file "$(humanlm configs show --path accelerate/fsdp_8gpu.yaml)" \\
          -m humanlm.cli.main train --config paper/reddit_humanlm.yaml
    """
    from humanlm.configs import config_path

    file = config_path(name)
    typer.echo(str(file) if path else file.read_text(encoding="utf-8").rstrip("\n"))


@app.command("copy")
def copy(
    name: Annotated[
        str,
        typer.Argument(help="A name from `humanlm configs list`, or a folder: paper, accelerate."),
    ],
    dest: Annotated[
        str | None,
        typer.Argument(
            help="File or folder (an existing one, or ending in /) to write to.",
            show_default="configs/NAME, the path the docs' commands use",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Copy a shipped config (or a whole folder of them) to edit and run your own version.

    Without DEST the copy goes to configs/NAME (configs/accelerate/fsdp_8gpu.yaml,
    configs/paper/...), the paths the launch lines in the docs read. Run the copy with humanlm
    train --config FILE; a file that exists is always taken before a shipped config of the same
    name.

    \b
    Examples:
      humanlm configs copy paper/reddit_humanlm.yaml
      humanlm configs copy accelerate/fsdp_8gpu.yaml
      humanlm configs copy paper/reddit_humanlm.yaml my_reddit.yaml
      humanlm configs copy accelerate
      humanlm configs copy paper configs/paper --force
    """
    from humanlm.configs import config_names, config_path, configs_dir
    from humanlm.errors import ConfigError
    from humanlm.files import write_text

    folder = name.strip("/")
    if folder and (configs_dir() / folder).is_dir():
        sources = [configs_dir() / n for n in config_names(folder)]
        target_dir = Path(dest) if dest is not None else _LOCAL / folder
        targets = [target_dir / s.name for s in sources]
    else:
        source = config_path(name)
        sources = [source]
        if dest is None:  # the shipped layout: configs/accelerate/X, configs/paper/X
            shipped = source.is_relative_to(configs_dir())
            targets = [_LOCAL / (source.relative_to(configs_dir()) if shipped else source.name)]
        elif dest.endswith("/") or Path(dest).is_dir():
            targets = [Path(dest) / source.name]
        else:
            targets = [Path(dest)]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise ConfigError(
            f"already there: {', '.join(existing[:3])}{more}; choose another DEST or add --force"
        )
    for source, target in zip(sources, targets, strict=True):
        write_text(target, source.read_text(encoding="utf-8"))
        typer.echo(f"wrote {target}")
