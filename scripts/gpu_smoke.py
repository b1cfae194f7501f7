"""GPU smoke run: a few HumanLM GRPO steps of the tiny model on one CUDA GPU, offline.

bf16 compute with float32 master weights (the paper presets' precision), a checkpoint, a resume
from it, and an evaluation of the final model, each timed; prints the figures as JSON and writes
them to OUT/figures.json. The judge is a word-overlap stand-in served on 127.0.0.1
(``humanlm.testing``), so no weights or keys are needed; the demo world is the data.

Needs: torch with CUDA, transformers, accelerate, peft, and humanlm with TRL installed (give a
folder of wheels with --wheels to install them without a network: ``pip download humanlm trl
--no-deps`` plus what ``pip check`` names). No vLLM. Takes a few minutes.

Run:
    python scripts/gpu_smoke.py --out runs/gpu-smoke [--wheels WHEELS_DIR]
    python scripts/gpu_smoke.py --out /tmp/smoke --allow-cpu --warmup-steps 20   # CPU, fp32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run(command: list[str], env: dict[str, str]) -> float:
    """Run one humanlm command, stream its output, return its wall time in seconds."""
    print("$", " ".join(command), flush=True)
    started = time.monotonic()
    subprocess.run(command, env=env, check=True)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gpu-smoke"))
    parser.add_argument("--wheels", type=Path, help="install humanlm and TRL from these wheels")
    parser.add_argument("--steps", type=int, default=6, help="GRPO steps before the resume")
    parser.add_argument("--warmup-steps", type=int, default=200, help="format warm-up steps")
    parser.add_argument("--allow-cpu", action="store_true", help="run on a CPU in fp32")
    args = parser.parse_args()

    if args.wheels:
        wheels = sorted(str(w) for w in args.wheels.glob("*.whl"))
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", *wheels],
            check=True,
        )
    import torch

    gpu = torch.cuda.is_available()
    if not gpu and not args.allow_cpu:
        print("no CUDA device: pass --allow-cpu to run the same steps on the CPU", file=sys.stderr)
        return 2
    from humanlm.testing import ScriptedServer
    from humanlm.testing.judge_replies import judge_reply_fn

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    humanlm = [sys.executable, "-m", "humanlm.cli.main"]
    args.out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, object] = {
        "device": torch.cuda.get_device_name(0) if gpu else "cpu",
        "torch": torch.__version__,
    }
    with ScriptedServer(reply_fn=judge_reply_fn(), model="judge") as judge:
        judge_spec = f"openai:judge@{judge.base_url}"
        precision = ["trainer.bf16=true", "model.dtype=float32"] if gpu else []
        train = [
            *humanlm, "train", "--config", "demo.yaml", "name=gpu-smoke",
            f"output_root={args.out}", f"judge.spec={judge_spec}", f"warmup.steps={args.warmup_steps}",
            f"trainer.max_steps={args.steps}", f"trainer.save_steps={args.steps // 2}",
            "trainer.per_device_train_batch_size=8", *precision,
        ]  # fmt: skip
        figures["train_s"] = run(train, env)
        [run_dir] = sorted(args.out.glob("*_gpu-smoke"))
        figures["run_dir"] = str(run_dir)
        resume = [
            *humanlm,
            "train",
            "--resume",
            str(run_dir),
            f"trainer.max_steps={args.steps + 2}",
        ]
        figures["resume_s"] = run(resume, env)
        steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        rewards = [s["reward"] for s in steps if "reward" in s]
        figures["steps_logged"] = len(rewards)
        figures["reward_first_last"] = [rewards[0], rewards[-1]] if rewards else None
        evaluate = [
            *humanlm, "eval", "--model", f"hf:{run_dir / 'model'}", "--data", "demo",
            "--limit", "16", "--judge", judge_spec, "--no-aspects", "--no-embedding",
            "--no-progress", "--out", str(args.out / "eval"), "population=false",
        ]  # fmt: skip
        figures["eval_s"] = run(evaluate, env)
    results = json.loads((args.out / "eval" / "results.json").read_text())
    figures["eval_metrics"] = results.get("metrics")
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
