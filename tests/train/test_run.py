"""`humanlm train` end to end on the tiny model: every mode, checkpoints, metrics, resume, failures.

These are real TRL runs (GRPOTrainer / SFTTrainer) on a ~10M-parameter model, a few steps each.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from humanlm.config import load_config
from humanlm.demo import demo_config_path
from humanlm.errors import ConfigError, HumanlmError
from humanlm.states.mode_file import load_mode
from humanlm.testing.judge_replies import judge_reply_fn
from humanlm.testing.server import Reply, ScriptedServer
from humanlm.train.callbacks import read_metrics
from humanlm.train.run import latest_checkpoint, resume_train, run_train

pytestmark = pytest.mark.slow

SMALL = [
    "trainer.max_steps=2",
    "trainer.save_steps=1",
    "trainer.per_device_train_batch_size=4",
    "warmup.steps=3",
    "data.limit=6",
    "grpo.max_completion_length=24",
    "sft.max_length=1536",
]


def _config(tiny_model_dir, *extra):
    return load_config(demo_config_path(), [*SMALL, f"model.path={tiny_model_dir}", *extra])


def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(str(Path(model_dir) / "model.safetensors"))


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


@pytest.mark.parametrize("mode", ["humanlm", "grpo", "grpo-think", "sft", "sft-think"])
def test_every_mode_trains_checkpoints_and_logs(mode, tiny_model_dir, tmp_path, umask_022):
    result = run_train(_config(tiny_model_dir, f"mode={mode}"), run_dir=tmp_path / "run")

    assert result.global_step == 2
    assert latest_checkpoint(result.run_dir).name == "checkpoint-2"
    # issue 21: every saved model carries its training mode.
    for folder in (latest_checkpoint(result.run_dir), result.model_dir):
        assert load_mode(folder).mode.name == mode and load_mode(folder).source.parent == folder
    assert (result.run_dir / "config.yaml").is_file()
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert (
        manifest["seed"] == 0
        and manifest["mode"] == mode
        and "system" in manifest["prompt_versions"]
    )
    train_logs = [
        m for m in read_metrics(result.metrics_path) if m["phase"] == "train" and "loss" in m
    ]
    assert [m["step"] for m in train_logs] == [1, 2]
    if mode in ("humanlm", "grpo", "grpo-think"):
        assert all("reward" in m for m in train_logs)
        assert any(key.startswith("valid_format/") for key in train_logs[0])
    before, after = _weights(tiny_model_dir), _weights(result.model_dir)
    assert any(not (before[k] == after[k]).all() for k in before), "training changed no weight"
    # issue 24: weights (checkpoints, warm-up, final model) were written 0600, not the umask's.
    modes = {
        str(p.relative_to(result.run_dir)): stat.S_IMODE(p.stat().st_mode)
        for p in result.run_dir.rglob("*")
        if p.is_file()
    }
    assert {"model/model.safetensors", "checkpoints/checkpoint-2/model.safetensors"} <= set(modes)
    assert ("warmup_model/model.safetensors" in modes) == (mode not in ("sft", "sft-think"))
    assert modes == dict.fromkeys(modes, 0o644)
    assert not (result.run_dir / ".humanlm.lock").exists()  # the run let go of its folder


def test_the_kl_reference_is_the_warmed_up_policy(tiny_model_dir, tmp_path, one_torch_thread):
    # issue 21: TRL loaded the KL reference from the checkpoint before the warm-up.
    cfg = _config(tiny_model_dir, "mode=grpo", "grpo.beta=0.1", "trainer.max_steps=1")
    result = run_train(cfg, run_dir=tmp_path / "run")
    [first] = [m for m in read_metrics(result.metrics_path) if m["phase"] == "train" and "kl" in m]
    assert first["step"] == 1 and abs(first["kl"]) < 1e-6  # policy == reference before an update
    assert (result.run_dir / "warmup_model" / "model.safetensors").is_file()


# The two judge tests below ride on sampled rollouts: a group is judged only when one of its
# candidates keeps the format. They run on one torch thread, so the rollouts are the same on every
# machine, and draw 8 rollouts (two groups) a step, so no step hinges on a handful of samples.
JUDGED = ["trainer.per_device_train_batch_size=8", "grpo.max_completion_length=48"]


def test_grpo_with_a_local_llm_judge_gets_real_rewards(
    warmed_model_dir, tmp_path, one_torch_thread
):
    # The judge scores every candidate 0.5: a format-valid rollout earns 0.5, a broken one 0.
    with ScriptedServer(reply_fn=judge_reply_fn(lambda cand, real: 0.5)) as server:
        cfg = _config(
            warmed_model_dir,
            "mode=humanlm",
            "warmup.steps=0",
            *JUDGED,
            f"judge.spec=openai:scripted@{server.base_url}",
            # The server answers at once; the deadline only bounds the test on a loaded machine.
            "judge.timeout_s=120",
        )
        result = run_train(cfg, run_dir=tmp_path / "run")
        requests = len(server.chat_requests)
    ledger = json.loads((result.run_dir / "judge_ledger.json").read_text())
    assert ledger["calls"] == requests > 0  # one call per group with a judgeable candidate
    assert not ledger["failures"] and not ledger["retries"]
    steps = [m for m in read_metrics(result.metrics_path) if "reward" in m]
    assert [m["step"] for m in steps] == [1, 2]
    assert any(m["reward"] > 0 for m in steps)
    for m in steps:  # mean reward = 0.5 x the valid share of the step's rollouts
        valid = [v for k, v in m.items() if k.startswith("valid_format/")]
        assert valid
        assert m["reward"] == pytest.approx(0.5 * sum(valid) / len(valid), abs=1e-6)


def test_failing_judge_stops_after_a_checkpoint_and_names_the_judge(
    warmed_model_dir, tmp_path, one_torch_thread
):
    # A judge that answers the preflight's request, then 500 to everything: every judgeable group
    # of the first step is unscored (a judge that fails from the start is refused before it).
    scored, answered = judge_reply_fn(lambda cand, real: 0.5), []

    def first_then_500(request):
        answered.append(request)
        return scored(request) if len(answered) == 1 else Reply(status=500, body="{}")

    with ScriptedServer(reply_fn=first_then_500) as server:
        cfg = _config(
            warmed_model_dir,
            "mode=humanlm",
            "warmup.steps=0",
            "trainer.max_steps=5",
            *JUDGED,
            f"judge.spec=openai:scripted@{server.base_url}",
            "judge.timeout_s=30",  # the 500s come at once; this only bounds a loaded machine
            "judge.max_retries=0",
            "max_unscored_fraction=0.0",
        )
        run_dir = tmp_path / "run"
        with pytest.raises(HumanlmError) as err:
            run_train(cfg, run_dir=run_dir)
        requests = len(server.chat_requests)
    assert "scripted" in str(err.value) and "unscored" in str(err.value)
    assert "last reasons: none recorded" not in str(err.value)  # the failure reasons are named
    assert latest_checkpoint(run_dir) is not None
    assert latest_checkpoint(run_dir).name == "checkpoint-1"  # stopped at the first bad step
    ledger = json.loads((run_dir / "judge_ledger.json").read_text())
    assert ledger["calls"] == requests > 0 and ledger["failures"]


def test_killed_run_resumes_from_its_checkpoint(tiny_model_dir, tmp_path, caplog):
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "humanlm.cli.main",
        "train",
        "--config",
        str(demo_config_path()),
        *SMALL,
        "trainer.max_steps=50",
        "mode=grpo",
        "warmup.steps=0",
        f"model.path={tiny_model_dir}",
        f"output_root={tmp_path}",
        "name=killed",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            runs = list(tmp_path.glob("*_killed"))
            if (
                runs
                and latest_checkpoint(runs[0]) is not None
                and latest_checkpoint(runs[0]).name != "checkpoint-1"
            ):
                break
            assert proc.poll() is None, "training ended before it could be killed"
            time.sleep(0.5)
        else:
            pytest.fail("no checkpoint within 240 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    run_dir = runs[0]
    # issue 24: a kill during a checkpoint save (the folder without its trainer_state.json, so
    # the run resumes one checkpoint earlier) left the replayed steps twice in metrics.jsonl.
    (latest_checkpoint(run_dir) / "trainer_state.json").unlink()
    saved = int(latest_checkpoint(run_dir).name.split("-")[1])
    logged = [m["step"] for m in read_metrics(run_dir / "metrics.jsonl") if "loss" in m]
    assert max(logged) > saved  # the killed run got further than the checkpoint
    result = resume_train(run_dir, overrides=[f"trainer.max_steps={saved + 2}"])
    assert result.global_step == saved + 2
    steps = [
        m["step"]
        for m in read_metrics(result.metrics_path)
        if m["phase"] == "train" and "loss" in m
    ]
    assert steps == list(range(1, saved + 3))  # each step once
    # The killed run's lock is taken over with a warning naming it.
    assert f"taking over the lock of humanlm train (pid {proc.pid}" in caplog.text


def test_validation_logs_response_alignment_per_dataset(tiny_model_dir, tmp_path):
    cfg = _config(tiny_model_dir, "mode=grpo", "val_every=1", "val_limit=4", "trainer.max_steps=1")
    result = run_train(cfg, run_dir=tmp_path / "run")
    val = [m for m in read_metrics(result.metrics_path) if m["phase"] == "val"]
    assert [m["step"] for m in val] == [1]
    keys = [k for k in val[0] if k.startswith("val/")]
    assert keys and all(k.endswith("/response") for k in keys)
    assert all(0.0 <= val[0][k] <= 1.0 for k in keys)


def test_lora_trains_adapters_only(tiny_model_dir, tmp_path):
    cfg = _config(
        tiny_model_dir, "mode=sft", "model.lora=true", "model.lora_r=4", "trainer.max_steps=1"
    )
    result = run_train(cfg, run_dir=tmp_path / "run")
    assert (result.model_dir / "adapter_model.safetensors").is_file()
    assert not (result.model_dir / "model.safetensors").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["grpo.learning_rate=-1"], "trainer.learning_rate: must be > 0"),
        (["trainer.max_steps=abc"], "trainer.max_steps: expected a number, got 'abc'"),
        (["warmup.steps=2", "warmup.learning_rate=-0.1"], "warmup.learning_rate: must be > 0"),
        (["trainer.lr_scheduler_type=nope"], "GRPOConfig refused the options"),
        (["mode=sft", "sft.num_train_epochs=two"], "trainer.num_train_epochs: expected a number"),
    ],
)
def test_trainer_options_are_refused_before_a_model_loads(tmp_path, overrides, message):
    cfg = load_config("demo.yaml", [*overrides, f"output_root={tmp_path / 'runs'}"])
    with pytest.raises(ConfigError, match=message):
        run_train(cfg)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_full_disk_while_saving_a_checkpoint_is_one_line(tiny_model_dir, tmp_path):
    # issue 24: torch.save on a full disk raises without an errno: a traceback. A real full file
    # system (an 80 MiB tmpfs in a user namespace: the weights fit, the optimizer state does not).
    import shlex
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("no unshare on this machine")
    root = tmp_path / "small"
    root.mkdir()
    probe = ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=80m tmpfs {root}"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("user namespaces are not allowed here")
    cli = [sys.executable, "-m", "humanlm.cli.main", "train", "--config", str(demo_config_path())]
    cli += [*SMALL, "mode=sft", "trainer.max_steps=1", f"model.path={tiny_model_dir}"]
    cli += [f"output_root={root}", "name=full"]
    script = (
        f"mount -t tmpfs -o size=80m tmpfs {root} && {shlex.join(cli)}; echo rc=$?; "
        f"find {root} -name 'checkpoint-*'"
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert "rc=2" in done.stdout, output
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert "no space left on the device" in line, line
    assert "checkpoints/checkpoint-1 (removed: nothing half-written is left)" in line, line
    assert line.endswith("free some space and run the same command again"), line
    assert done.stdout.split("rc=2")[1].split() == []  # no checkpoint folder is left
