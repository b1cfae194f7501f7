"""Logging and run folders: ``runs/<YYYYmmdd-HHMMSS>_<name>/`` with config.yaml and manifest.json."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from humanlm.files import write_json, write_text

__all__ = ["make_run_dir", "package_versions", "write_run_files"]

_TRACKED_PACKAGES = (
    "humanlm",
    "torch",
    "transformers",
    "trl",
    "accelerate",
    "peft",
    "datasets",
    "openai",
)


def make_run_dir(root: str | Path, name: str) -> Path:
    """Create and return ``root/<timestamp>_<name>`` (a numeric suffix avoids collisions)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}_{safe}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide a run's behaviour."""
    versions = {}
    for pkg in _TRACKED_PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return versions


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def write_run_files(
    run_dir: Path, *, config: dict[str, Any], seed: int, extra: dict[str, Any] | None = None
) -> None:
    """Write the resolved ``config.yaml`` and ``manifest.json`` (commit, versions, prompts, seed)."""
    from humanlm.states import prompt_versions

    write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    manifest = {
        "schema_version": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "packages": package_versions(),
        "prompt_versions": dict(prompt_versions()),
        "seed": seed,
        **(extra or {}),
    }
    write_json(run_dir / "manifest.json", manifest)
