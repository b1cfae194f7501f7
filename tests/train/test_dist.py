"""Two real processes under torchrun (gloo on CPU): one run folder, files written once, resume,
a failing judge that stops both ranks, and the rank helpers on their own.

The launches are slow (each process imports torch and TRL), so they are few and tiny: a 10M model,
four examples, two steps.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import humanlm
from humanlm.demo import demo_config_path
from humanlm.llm.ledger import Ledger
from humanlm.states.mode_file import MODE_FILE, load_mode
from humanlm.testing.server import ScriptedServer
from humanlm.train.callbacks import read_metrics
from humanlm.train.dist import all_gather, is_main, merge_ledgers, shared_run_dir, world_size
from humanlm.train.run import latest_checkpoint

TINY = [
    "trainer.max_steps=2",
    "trainer.save_steps=2",
    "trainer.per_device_train_batch_size=4",
    "warmup.steps=0",
    "data.limit=4",
    "grpo.max_completion_length=16",
    "sft.max_length=1024",
    "val_every=0",
]
# Each launch is bounded: a hang (a rank waiting in a collective for ever) fails the test.
LAUNCH_TIMEOUT_S = 420


def _torchrun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "humanlm.cli.main",
        "train",
        *args,
    ]
    # The children import this checkout's humanlm whatever their working directory.
    src = str(Path(humanlm.__file__).resolve().parents[1])
    path = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S
    )


def _launch(tmp_path: Path, model_dir: Path, *overrides: str) -> tuple[Path, str]:
    """Train under torchrun; return the one run folder and the combined output."""
    root = tmp_path / "runs"
    done = _torchrun(
        tmp_path,
        "--config",
        str(demo_config_path()),
        *TINY,
        f"model.path={model_dir}",
        f"output_root={root}",
        "name=mp",
        *overrides,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    runs = sorted(root.iterdir())
    assert len(runs) == 1, f"one run folder per run, got {[p.name for p in runs]}"
    return runs[0], output


def _train_steps(run_dir: Path) -> list[int]:
    return [m["step"] for m in read_metrics(run_dir / "metrics.jsonl") if m["phase"] == "train" and "loss" in m]  # fmt: skip


def _check_run(run_dir: Path, output: str, mode: str, *, steps: int) -> None:
    """One run folder written once by rank 0, with a checkpoint both ranks took part in."""
    assert output.count("run folder:") == 1  # rank 0 reports, rank 1 stays quiet
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["mode"] == mode
    assert _train_steps(run_dir) == list(range(1, steps + 1))  # once per step, not per rank
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{steps}"
    assert sorted(p.name for p in checkpoint.glob("rng_state_*.pth")) == [
        "rng_state_0.pth",
        "rng_state_1.pth",
    ]
    assert (run_dir / "model" / "model.safetensors").is_file()
    # issue 21: the checkpoints and the final model carry the training mode, written by rank 0.
    for folder in (checkpoint, run_dir / "model"):
        assert load_mode(folder).source == folder / MODE_FILE
        assert load_mode(folder).mode.name == mode


# sft runs in the resume test below (one launch fewer).
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["humanlm", "grpo", "grpo-think", "sft-think"])
def test_every_mode_under_two_processes(mode, tiny_model_dir, tmp_path):
    extra = ["val_every=2", "val_limit=3"] if mode == "humanlm" else []
    run_dir, output = _launch(tmp_path, tiny_model_dir, f"mode={mode}", *extra)

    _check_run(run_dir, output, mode, steps=2)
    if mode == "humanlm":
        val = [m for m in read_metrics(run_dir / "metrics.jsonl") if m["phase"] == "val"]
        assert [m["step"] for m in val] == [2]  # every rank validated its share, written once
        assert any(k.startswith("val/") for k in val[0])
        assert json.loads((run_dir / "best_checkpoint.json").read_text())["step"] == 2
    if mode != "sft-think":
        ledger = json.loads((run_dir / "judge_ledger.json").read_text())
        # Both ranks' judgements merged: 2 steps x 2 ranks x one group of 4 rollouts each.
        assert ledger["groups"] == 4


@pytest.mark.slow
def test_a_two_process_run_resumes_to_a_later_step(tiny_model_dir, tmp_path):
    run_dir, output = _launch(tmp_path, tiny_model_dir, "mode=sft", "trainer.save_steps=1")
    _check_run(run_dir, output, "sft", steps=2)
    done = _torchrun(tmp_path, "--resume", str(run_dir), "trainer.max_steps=4")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert len(list((tmp_path / "runs").iterdir())) == 1  # the same folder, no new one
    _check_run(run_dir, done.stdout + done.stderr, "sft", steps=4)
    assert json.loads((run_dir / "manifest.json").read_text())["resumed_from"].endswith(
        "checkpoint-2"
    )


@pytest.mark.slow
def test_a_failing_judge_stops_both_ranks_with_the_error(warmed_model_dir, tmp_path):
    # Every judge request gets a 500; a warmed model writes parseable states, so groups reach the
    # judge and come back unscored. Both ranks must stop at the same step and exit with the error.
    with ScriptedServer() as server:
        root = tmp_path / "runs"
        done = _torchrun(
            tmp_path,
            "--config",
            str(demo_config_path()),
            *TINY,
            "mode=humanlm",
            "trainer.max_steps=6",
            "trainer.save_steps=6",
            "grpo.max_completion_length=48",
            f"model.path={warmed_model_dir}",
            f"output_root={root}",
            "name=mp",
            f"judge.spec=openai:scripted@{server.base_url}",
            "judge.timeout_s=3",
            "judge.max_retries=0",
            "max_unscored_fraction=0.0",
            "judge_check=false",  # past the launch's judge request: the guard in training is tested
        )
        assert server.chat_requests  # the judge was really called
    output = done.stdout + done.stderr
    assert done.returncode != 0
    # One error per rank, the same decision (the ranks' output may interleave on one line).
    errors = re.findall(r"error: judge openai:scripted@\S+ left \d+% of step 1 unscored", output)
    assert len(errors) == 2 and len(set(errors)) == 1, output[-4000:]
    assert output.count("fix the judge, then resume with") == 2
    (run_dir,) = root.iterdir()
    assert latest_checkpoint(run_dir).name == "checkpoint-1"  # both stopped at the first bad step
    assert json.loads((run_dir / "judge_ledger.json").read_text())["failures"]


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count()


@pytest.mark.gpu
@pytest.mark.skipif(
    _cuda_devices() < 2,
    reason="FSDP needs two CUDA devices: accelerate 1.15 switches to FSDP only for accelerator "
    "devices (AcceleratorState in accelerate/state.py leaves DistributedType.MULTI_CPU out of "
    "the FSDP branch), so trainer.fsdp on a gloo CPU run silently trains as DDP",
)
def test_fsdp2_sharded_checkpoints_and_full_final_weights(tiny_model_dir, tmp_path):
    run_dir, _ = _launch(
        tmp_path,
        tiny_model_dir,
        "mode=humanlm",
        "val_every=2",
        "val_limit=3",
        "trainer.fsdp=full_shard",
        "trainer.fsdp_config={version: 2, state_dict_type: SHARDED_STATE_DICT}",
    )
    checkpoint = latest_checkpoint(run_dir)
    assert (checkpoint / "pytorch_model_fsdp_0").is_dir()  # the checkpoint stays sharded
    assert (run_dir / "model" / "model.safetensors").is_file()  # the final model is whole
    assert [m["step"] for m in read_metrics(run_dir / "metrics.jsonl") if m["phase"] == "val"] == [
        2
    ]


def test_rank_helpers_in_one_process(tmp_path):
    assert world_size() == 1 and is_main() and all_gather({"a": 1}) == [{"a": 1}]
    first = shared_run_dir(tmp_path, "x y")
    assert first.is_dir() and first.name.endswith("_x-y")


def test_ledgers_of_all_ranks_merge():
    a, b = Ledger(model="m"), Ledger(model="m")
    a.record_call(latency_s=0.1, input_tokens=10, output_tokens=2)
    b.record_call(latency_s=0.3, input_tokens=5, output_tokens=1)
    b.record_unscored("http_500")
    a.record_batch(samples=4, unscored=0, reasons={})
    b.record_batch(samples=4, unscored=4, reasons={"http_500": 4})
    merged = merge_ledgers([a, b])
    assert merged.calls == 2 and merged.input_tokens == 15 and merged.output_tokens == 3
    assert merged.failures == {"http_500": 1} and sorted(merged.latencies) == [0.1, 0.3]
    assert merged.last_batch_unscored_frac == 0.5
    assert merged.last_batch_failures == {"http_500": 4}
    assert merge_ledgers([a]) is a
