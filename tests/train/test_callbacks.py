"""The training progress bar: one line with step, reward and judge calls; TRL's per-step dicts
of strings only with -v (the figures are in metrics.jsonl either way)."""

from __future__ import annotations

import logging

from transformers import TrainingArguments
from transformers.trainer_callback import TrainerControl, TrainerState

from humanlm.train.callbacks import StepProgress

LOGS = {"loss": 0.25, "reward": 0.5, "judge/calls": 3.0, "completions/mean_length": 12.0}


def _two_steps(tmp_path, caplog_level: int, caplog) -> tuple[int, int, dict[str, str]]:
    """Two steps through a real ``StepProgress``: the bar's steps, total and figures at the end."""
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    state, control = TrainerState(max_steps=2), TrainerControl()
    progress = StepProgress()
    with caplog.at_level(caplog_level, logger="humanlm.train.callbacks"):
        progress.on_train_begin(args, state, control)
        for step in (1, 2):
            state.global_step = step
            progress.on_step_end(args, state, control)
            progress.on_log(args, state, control, logs=dict(LOGS))
        bar = progress.bar
        figures = dict(kv.split("=") for kv in bar.postfix.split(", "))
        shown = (bar.n, bar.total, figures)
        progress.on_train_end(args, state, control)
    return shown


def test_the_bar_shows_step_reward_and_judge_calls_without_the_dicts(tmp_path, caplog, capsys):
    # issue 25: TRL's per-step dicts of strings flooded the terminal.
    steps, total, postfix = _two_steps(tmp_path, logging.INFO, caplog)
    assert (steps, total) == (2, 2)
    assert postfix == {"reward": "0.500", "loss": "0.250", "judge calls": "6"}
    err = capsys.readouterr().err
    assert "completions/mean_length" not in err and "training" in err


def test_verbose_prints_every_dict(tmp_path, caplog, capsys):
    _two_steps(tmp_path, logging.DEBUG, caplog)
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("'completions/mean_length': 12.0") == 2
