"""The package's declared ranges install: pip's resolver on every extra at once.

A solution for all extras together is a solution for each of them, so one dry run proves that
``pip install 'humanlm[EXTRA]'`` resolves for every extra. Needs the package registry (as
``make test`` does for its own install).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_extra_resolves_with_the_package(tmp_path: Path) -> None:
    # issue 21: humanlm[vllm] was ResolutionImpossible (fastapi and numpy floors above vLLM's).
    extras = sorted(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
        "--disable-pip-version-check", "--report", str(report), f"{ROOT}[{','.join(extras)}]",
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    chosen = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert {"humanlm", "vllm", "verl", "litellm", "trl"} <= set(chosen)
    assert chosen["vllm"].startswith("0.31.")
