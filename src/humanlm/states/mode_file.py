"""The training mode saved with a model: ``humanlm_mode.json`` in every checkpoint and final model.

The mode decides the prompt a model was trained on (state set, tagged or not) and whether it
thinks first, so a model is only scored or served correctly with it. ``humanlm train`` writes the
file into each ``checkpoints/checkpoint-N/`` and into ``model/``; a verl launch writes it into
``trainer.default_local_dir``, above verl's ``global_step_N/actor[/huggingface]`` folders.
``load_mode`` is the one reader (``eval``, ``serve`` and ``simulate`` call it).

Example:
    >>> saved = load_mode("hf:runs/20260101-120000_sft/checkpoints/checkpoint-200")  # doctest: +SKIP
    >>> saved.mode.state_set, saved.mode.thinking  # doctest: +SKIP
    ('r_no_tag', False)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanlm.errors import ConfigError
from humanlm.files import write_json
from humanlm.states.modes import MODES, Mode, get_mode

__all__ = ["MODE_FILE", "MODE_FILE_VERSION", "SavedMode", "load_mode", "write_mode_file"]

MODE_FILE = "humanlm_mode.json"
MODE_FILE_VERSION = 1
_MANIFEST = "manifest.json"  # a run folder's record; holds the mode of runs older than MODE_FILE
_SPEC_KINDS = ("hf", "vllm", "openai")
_TRL_CHECKPOINT = re.compile(r"checkpoint-\d+")
_VERL_STEP = re.compile(r"global_step_\d+")


@dataclass(frozen=True)
class SavedMode:
    """The training mode of a model and the file it was read from.

    Attributes:
        mode: the training mode.
        source: ``humanlm_mode.json`` (or, for runs trained before it existed, the run folder's
            ``manifest.json``).
    """

    mode: Mode
    source: Path


def write_mode_file(folder: str | os.PathLike[str], mode: str | Mode) -> Path:
    """Write ``folder/humanlm_mode.json`` atomically: the mode and what its prompt needs.

    In a multi-process run call it on one rank only.
    """
    chosen = mode if isinstance(mode, Mode) else get_mode(mode)
    path = Path(folder) / MODE_FILE
    write_json(
        path,
        {
            "schema_version": MODE_FILE_VERSION,
            "mode": chosen.name,
            "state_set": chosen.state_set,
            "thinking": chosen.thinking,
            "algorithm": chosen.algorithm,
        },
    )
    return path


def load_mode(model: str | os.PathLike[str]) -> SavedMode | None:
    """The training mode saved with ``model``, or ``None`` for a model without one (a base model).

    Args:
        model: a model folder, or a spec: ``hf:PATH``, ``vllm:PATH``, or ``openai:NAME[@URL]``
            whose NAME is a local folder (``vllm serve`` names a model by the path it was given).
            Other specs give ``None``.

    Looks in the folder's own ``humanlm_mode.json``; for a verl checkpoint
    (``global_step_N/actor`` or its ``huggingface/``) in the one of the checkpoint root; for a
    folder of a humanlm run (the run folder, its ``model/`` or ``checkpoints/checkpoint-N``)
    trained before mode files existed, in the run's ``manifest.json``.

    Raises:
        ConfigError: a mode file or manifest that is not readable JSON, names an unknown mode, or
            whose prompt settings contradict its mode.
    """
    folder = _model_folder(model)
    if folder is None or not folder.is_dir():
        return None
    own = folder / MODE_FILE
    if own.is_file():
        return SavedMode(_read_mode_file(own), own)
    verl_root = _verl_root(folder)
    if verl_root is not None and (verl_root / MODE_FILE).is_file():
        return SavedMode(_read_mode_file(verl_root / MODE_FILE), verl_root / MODE_FILE)
    manifest = _run_folder(folder) / _MANIFEST
    if manifest.is_file():
        mode = _read_manifest(manifest)
        return SavedMode(mode, manifest) if mode is not None else None
    return None


def _model_folder(model: str | os.PathLike[str]) -> Path | None:
    if not isinstance(model, str):
        return Path(model)
    kind, sep, _ = model.partition(":")
    if not sep or kind not in ("hf", "vllm", "openai", "litellm", "embedding"):
        return Path(model)
    from humanlm.llm.specs import parse_spec

    parsed = parse_spec(model, role="model")
    return Path(parsed.model) if parsed.kind in _SPEC_KINDS else None


def _verl_root(folder: Path) -> Path | None:
    """verl's ``trainer.default_local_dir`` above ``global_step_N/actor[/huggingface]``."""
    actor = folder.parent if folder.name == "huggingface" else folder
    step = actor.parent
    if actor.name == "actor" and _VERL_STEP.fullmatch(step.name):
        return step.parent
    return None


def _run_folder(folder: Path) -> Path:
    """The humanlm run folder a model folder belongs to (the folder itself when none)."""
    if folder.name == "model":
        return folder.parent
    if _TRL_CHECKPOINT.fullmatch(folder.name) and folder.parent.name == "checkpoints":
        return folder.parent.parent
    return folder


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable {what} ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a readable {what} (a JSON object is expected)")
    return data


def _named_mode(path: Path, name: Any) -> Mode:
    if name not in MODES:
        raise ConfigError(f"{path}: mode {name!r} is not one of {', '.join(MODES)}")
    return MODES[name]


def _read_mode_file(path: Path) -> Mode:
    data = _read_json(path, "mode file")
    mode = _named_mode(path, data.get("mode"))
    for key in ("state_set", "thinking"):
        if key in data and data[key] != getattr(mode, key):
            raise ConfigError(
                f"{path}: {key} {data[key]!r} contradicts mode {mode.name!r} "
                f"({key} {getattr(mode, key)!r}); fix or delete the file"
            )
    return mode


def _read_manifest(path: Path) -> Mode | None:
    name = _read_json(path, "manifest").get("mode")
    # An eval folder's or another tool's manifest names no training mode.
    return None if name is None else _named_mode(path, name)
