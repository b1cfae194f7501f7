"""Trainer callbacks: metrics into ``metrics.jsonl``, the training mode (and the umask's file
mode) into every checkpoint, the stop on a failing judge, and one quiet progress bar."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from humanlm.files import apply_umask, read_jsonl, write_jsonl
from humanlm.states.mode_file import write_mode_file
from humanlm.states.modes import Mode
from humanlm.train import dist

__all__ = [
    "MetricsFileCallback",
    "ModeFileCallback",
    "StepProgress",
    "UnscoredGuard",
    "drop_steps_after",
    "read_metrics",
    "use_step_progress",
]

logger = logging.getLogger(__name__)


class StepProgress(TrainerCallback):
    """One progress bar for training (main process): step, reward, judge calls so far, ETA.

    Replaces transformers' bar, which prints every step's dict of strings under it. The figures
    of each step are in ``metrics.jsonl``; the whole dicts are printed only with ``-v``.
    """

    def __init__(self, *, desc: str = "training"):
        self.desc = desc
        self.bar: Any = None
        self.judge_calls = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any):
        if state.is_world_process_zero and not args.disable_tqdm:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=state.max_steps, initial=state.global_step, desc=self.desc, unit="step"
            )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any):
        if self.bar is None or not logs:
            return
        self.judge_calls += int(logs.get("judge/calls") or 0)
        shown = {}
        for key, label in (("reward", "reward"), ("loss", "loss")):
            if isinstance(logs.get(key), int | float):
                shown[label] = f"{logs[key]:.3f}"
        if self.judge_calls:
            shown["judge calls"] = str(self.judge_calls)
        if shown:
            self.bar.set_postfix(shown, refresh=False)
        if logger.isEnabledFor(logging.DEBUG):
            self.bar.write(str(logs))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def use_step_progress(trainer: Any) -> None:
    """Swap the Trainer's own bar and printer for one ``StepProgress`` bar."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(StepProgress())


class MetricsFileCallback(TrainerCallback):
    """Append each ``on_log`` payload (with step and phase) to a JSONL file, main process only.

    A resumed run starts again after its checkpoint, so the steps a killed run logged past that
    checkpoint are removed from the file first: they are logged again, once.
    """

    def __init__(self, path: Path, *, phase: str):
        self.path = Path(path)
        self.phase = phase

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any):
        if state.is_world_process_zero:
            drop_steps_after(self.path, state.global_step)

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


class ModeFileCallback(TrainerCallback):
    """Write the training mode into each checkpoint the Trainer saves (main process only).

    A checkpoint is then evaluated or served with the prompt it was trained on, wherever it is
    copied (``humanlm.states.mode_file``).
    """

    def __init__(self, mode: Mode):
        self.mode = mode

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any):
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            write_mode_file(folder, self.mode)
            apply_umask(folder)  # safetensors writes the weights 0600
        return control


def drop_steps_after(path: Path, step: int) -> int:
    """Remove the records of training steps after ``step`` from ``metrics.jsonl``; their number.

    The warm-up counts steps of its own and is kept (a resumed run does not warm up again). A
    last line a kill cut short is removed too, so the next record starts a line of its own.
    """
    path = Path(path)
    cut = path.is_file() and path.read_bytes()[-1:] not in (b"", b"\n")
    records = read_jsonl(path)
    kept = [
        r
        for r in records
        if r.get("phase") == "warmup" or not isinstance(r.get("step"), int) or r["step"] <= step
    ]
    if cut or len(kept) < len(records):
        write_jsonl(path, kept)
    return len(records) - len(kept)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl`` back (empty list when absent; a line cut by a crash is left out)."""
    return read_jsonl(path)


class UnscoredGuard(TrainerCallback):
    """Stop training, after a checkpoint, when too much of a step went unscored by the judge.

    Unscored groups are already left out of the update (reward ``None``); this guard catches a
    judge that is failing wholesale. Every rank scores its own slice of the rollouts, so the
    decision is taken on the ledgers of all ranks together: every rank stops at the same step
    (a rank that stopped alone would leave the others blocked in a collective). After
    ``trainer.train()`` returns, ``error`` holds the message to raise on every rank (naming the
    judge and its last failure reasons), or ``None``.
    """

    def __init__(self, *, ledger: Any, judge_name: str, max_fraction: float, run_dir: Path):
        self.ledger = ledger
        self.judge_name = judge_name
        self.max_fraction = max_fraction
        self.run_dir = Path(run_dir)
        self.error: str | None = None

    def write_ledger(self) -> Any:
        """Merge every rank's ledger; rank 0 writes ``judge_ledger.json``. Call on every rank."""
        merged = dist.merge_ledgers(dist.all_gather(self.ledger))
        if dist.is_main() and (merged.calls or merged.failures or merged.groups):
            merged.write(self.run_dir)
        return merged

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any):
        merged = self.write_ledger()
        fraction = merged.last_batch_unscored_frac
        if fraction is None or fraction <= self.max_fraction or self.error:
            return control
        reasons = ", ".join(f"{k} x{v}" for k, v in sorted(merged.last_batch_failures.items()))
        self.error = (
            f"judge {self.judge_name} left {fraction:.0%} of step {state.global_step} unscored "
            f"(limit {self.max_fraction:.0%}; last reasons: {reasons or 'none recorded'}). "
            f"A checkpoint was saved in {args.output_dir}; fix the judge, then resume with "
            f"`humanlm train --resume {self.run_dir}`."
        )
        control.should_save = True
        control.should_training_stop = True
        return control
