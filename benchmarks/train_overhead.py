"""Step time of `humanlm train` (GRPO, offline MiniLM judge) against bare TRL with a constant reward.

Both sides run TRL's GRPOTrainer on the same tiny model, the same state-augmented demo prompts,
the same batch and generation settings, and the same CPU fused-head setting; the only
difference is humanlm's reward path (strict parsing, grouping by example and state, the MiniLM
judge, per-state metrics, the unscored guard and metrics file). Prints seconds per step (median
over the timed steps, after warm-up steps) and the ratio.

Run:  .venv/bin/python benchmarks/train_overhead.py [--steps 6] [--warmup-steps 2]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from humanlm.config import load_config
from humanlm.data.resolve import resolve_split
from humanlm.demo import demo_config_path
from humanlm.judge import JudgeConfig, build_judge, state_reward
from humanlm.model.tiny import build_tiny_model
from humanlm.train.callbacks import MetricsFileCallback, UnscoredGuard
from humanlm.train.cpu import enable_compact_lm_head_on_cpu
from humanlm.train.data import build_grpo_dataset
from humanlm.train.trainers import build_grpo_trainer


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)


def constant_reward(prompts, completions, **kwargs):
    return [0.5] * len(completions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per side")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed first steps")
    args = parser.parse_args()
    enable_compact_lm_head_on_cpu()
    cfg = load_config(demo_config_path(), ["mode=humanlm"])
    options = {
        **cfg.trainer_options,
        "max_steps": args.steps + args.warmup_steps,
        "save_strategy": "no",
        "max_completion_length": 48,
        "per_device_train_batch_size": 16,
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir = build_tiny_model(tmp_path / "tiny")
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        examples = resolve_split("demo", dataset=None, split="train", work_dir=tmp_path / "data")
        dataset = build_grpo_dataset(examples, state_set="sebvgcr", thinking=True, seed=0)
        judge = build_judge(JudgeConfig("embedding:minilm"))
        ours = functools.partial(state_reward, judge=judge, tagged=True)
        sides = {
            "bare TRL, constant reward": ([constant_reward], []),
            "humanlm reward + callbacks": (
                [ours],
                [
                    MetricsFileCallback(tmp_path / "metrics.jsonl", phase="train"),
                    UnscoredGuard(
                        ledger=judge.ledger,
                        judge_name=judge.name,
                        max_fraction=0.5,
                        run_dir=tmp_path,
                    ),
                ],
            ),
        }
        results = {}
        for name, (rewards, callbacks) in sides.items():
            timer = StepTimer()
            trainer = build_grpo_trainer(
                model=AutoModelForCausalLM.from_pretrained(model_dir),
                tokenizer=tokenizer,
                train_dataset=dataset,
                reward_funcs=rewards,
                output_dir=tmp_path / name.replace(" ", "_"),
                trainer_options=options,
                seed=0,
                callbacks=[timer, *callbacks],
            )
            trainer.train()
            results[name] = statistics.median(timer.times[args.warmup_steps :])
    base, ours_time = results.values()
    print(f"{'side':<30} {'s/step (median)':>16}")
    for name, seconds in results.items():
        print(f"{name:<30} {seconds:>16.3f}")
    print(f"overhead ratio: {ours_time / base:.3f}x (target <= 1.25x)")


if __name__ == "__main__":
    main()
