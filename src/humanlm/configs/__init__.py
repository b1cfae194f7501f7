"""The configs shipped inside the package, found by name wherever humanlm is installed.

``paper/<dataset>_<mode>.yaml`` hold the paper's training settings (30 presets),
``accelerate/*.yaml`` the multi-GPU launch configs and ``demo.yaml`` the offline demo preset.
A name is the path below this folder; ``.yaml`` may be left off, and the ``configs/`` prefix of a
repository checkout is accepted, so the launch lines written in the files work from a pip install.

Example:
    >>> from humanlm.configs import config_names, find_config
    >>> find_config("paper/reddit_humanlm.yaml").name
    'reddit_humanlm.yaml'
    >>> len(config_names("paper"))
    30
"""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path, PurePosixPath

from humanlm.errors import ConfigError

__all__ = ["config_names", "config_path", "configs_dir", "find_config"]

_CHECKOUT_PREFIX = "configs"


def configs_dir() -> Path:
    """The folder of the shipped configs (inside the installed package)."""
    return Path(str(resources.files(__name__)))


def config_names(group: str | None = None) -> list[str]:
    """Names of the shipped configs, sorted, e.g. ``demo.yaml``, ``paper/reddit_humanlm.yaml``.

    Args:
        group: only the configs below this folder (``paper``, ``accelerate``); ``None``: all.

    Raises:
        ConfigError: ``group`` is not a folder of shipped configs.
    """
    root = configs_dir()
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml"))
    if group is None:
        return names
    folder = group.strip("/")
    chosen = [n for n in names if n.startswith(f"{folder}/")]
    if not chosen:
        groups = sorted({n.split("/")[0] for n in names if "/" in n})
        raise ConfigError(f"no shipped configs under {group!r}; groups: {', '.join(groups)}")
    return chosen


def _normalise(name: str | os.PathLike[str]) -> str:
    parts = [p for p in PurePosixPath(Path(name).as_posix()).parts if p != "."]
    if parts and parts[0] == _CHECKOUT_PREFIX:
        parts = parts[1:]
    text = "/".join(parts)
    if text and not text.endswith((".yaml", ".yml")) and "." not in parts[-1]:
        text += ".yaml"
    return text


def config_path(name: str | os.PathLike[str]) -> Path:
    """The file of the shipped config ``name`` (``paper/reddit_humanlm``, ``demo.yaml`` ...).

    Raises:
        ConfigError: no shipped config has that name; the message lists the closest names.
    """
    key = _normalise(name)
    names = config_names()
    if key not in names:
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"config file {name} does not exist, here or among the shipped configs; "
            f"{hint}see `humanlm configs list`"
        )
    return configs_dir() / key


def find_config(path: str | os.PathLike[str]) -> Path:
    """A config file: ``path`` itself when that file exists, else the shipped config of that name.

    A file in the current directory always wins, so a copied and edited preset
    (``humanlm configs copy paper/reddit_humanlm.yaml``) is the one that runs.

    Raises:
        ConfigError: neither a file nor a shipped config.
    """
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    if candidate.is_absolute():
        raise ConfigError(f"config file {candidate} does not exist")
    return config_path(candidate)
