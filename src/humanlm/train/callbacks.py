"""Trainer callbacks: every logged dict becomes one line of ``metrics.jsonl`` in the run folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

__all__ = ["MetricsFileCallback", "read_metrics"]


class MetricsFileCallback(TrainerCallback):
    """Append each ``on_log`` payload (with step and phase) to a JSONL file, main process only."""

    def __init__(self, path: Path, *, phase: str):
        self.path = Path(path)
        self.phase = phase

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any):
        if not logs or not state.is_world_process_zero:
            return
        record = {"phase": self.phase, "step": state.global_step}
        for key, value in logs.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None  # JSON has no NaN; a missing value stays missing, never 0
            record[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl`` back (empty list when absent)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
