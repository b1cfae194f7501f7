"""The preflight: ``humanlm train --check``, the start of every launch and ``--dry-run`` check the
trainer options, data, model, extras, keys, one judge request and the GPUs, one line each, before
anything loads; and the paper presets' judge scores every rollout against a server that applies
OpenAI's rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from humanlm.cli.main import main
from humanlm.config import load_config
from humanlm.demo import demo_config_path
from humanlm.errors import ConfigError
from humanlm.testing.judge_replies import judge_reply_fn
from humanlm.testing.server import Reply, ScriptedServer
from humanlm.train.callbacks import read_metrics
from humanlm.train.run import run_train

REFUSAL = {
    "error": {
        "message": "Unsupported parameter: 'seed' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "seed",
        "code": "unsupported_parameter",
    }
}


def refusing_server() -> ScriptedServer:
    return ScriptedServer(reply_fn=lambda request: Reply(status=400, body=json.dumps(REFUSAL)))


def test_a_judge_that_refuses_the_request_stops_the_run_before_anything_loads(
    tmp_path, monkeypatch
):
    # issue 21: before, the run loaded the model and trained a step on no score at all.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with refusing_server() as server:
        cfg = load_config(
            demo_config_path(),
            [
                "mode=humanlm",
                f"judge.spec=openai:gpt-5-mini@{server.base_url}",
                f"output_root={tmp_path / 'runs'}",
                "model.path=nonexistent/model",  # a hub id, never loaded: the judge is asked first
            ],
        )
        with pytest.raises(ConfigError) as info:
            run_train(cfg)
        assert len(server.chat_requests) == 1
    (refused,) = info.value.problems
    assert "refused the first judge request" in refused and "'seed'" in refused
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_cli_reports_the_refusal_in_one_line_with_exit_code_2(tmp_path, capsys):
    with refusing_server() as server:
        args = [
            "train",
            "--config",
            str(demo_config_path()),
            "mode=grpo",
            "model.path=tiny",
            f"judge.spec=openai:judge@{server.base_url}",
            f"output_root={tmp_path}",
        ]
        with pytest.raises(SystemExit) as done:
            main(args)
    assert done.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "refused the first judge request" in errors[0]
    assert "Unsupported parameter: 'seed'" in errors[0]


@pytest.mark.slow
def test_a_step_with_the_paper_judge_spec_scores_every_rollout(
    warmed_model_dir, tmp_path, one_torch_thread
):
    # issue 21: the presets' judge (openai:gpt-5-mini, temperature 1, 4096 tokens) against a
    # stand-in that refuses what OpenAI refuses for reasoning models.
    with ScriptedServer(reply_fn=judge_reply_fn(lambda cand, real: 0.5)) as server:
        cfg = load_config(
            demo_config_path(),
            [
                "mode=humanlm",
                f"model.path={warmed_model_dir}",
                "trainer.max_steps=1",
                "trainer.per_device_train_batch_size=8",
                "grpo.max_completion_length=48",
                "data.limit=6",
                f"judge.spec=openai:gpt-5-mini@{server.base_url}",
                "judge.temperature=1.0",
                "judge.timeout_s=120",
                "max_unscored_fraction=0.0",
            ],
        )
        assert cfg.judge.max_tokens == 4096
        result = run_train(cfg, run_dir=tmp_path / "run")
        bodies = [r.body for r in server.chat_requests]
    assert server.refused == 0 and len(bodies) >= 2  # the first request, then the step's
    assert all(b["max_completion_tokens"] == 4096 and "max_tokens" not in b for b in bodies)
    ledger = json.loads((result.run_dir / "judge_ledger.json").read_text())
    assert ledger["calls"] == len(bodies) and not ledger["failures"] and not ledger["retries"]
    (step,) = [m for m in read_metrics(result.metrics_path) if "reward" in m]
    assert step["judge/unscored_frac"] == 0.0 and step["judge/calls"] > 0


def _cli(
    *args: str, cwd, env: dict[str, str], hide: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """The real console entry point in a fresh process, with the packages ``hide`` uninstalled
    (a ``None`` in ``sys.modules`` is how Python marks a module as absent)."""
    code = (
        "import sys\n"
        f"for name in {list(hide)!r}: sys.modules[name] = None\n"
        "from humanlm.cli.main import main\n"
        "main(sys.argv[1:])\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


def _lines(text: str, status: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(status)]


def test_check_names_each_fault_of_a_fresh_machine_in_one_line(tmp_path):
    # issue 25: the dry run passed with no data, no keys, no vLLM and no litellm; the launch then
    # retried the hub for a dataset named data/reddit, or ended in a traceback when offline.
    env = _bare_env()
    # README.md's example, on a machine without the data, keys, vLLM or litellm.
    args = ("train", "--config", "configs/paper/reddit_humanlm.yaml")
    done = _cli(*args, "--check", cwd=tmp_path, env=env, hide=("vllm", "litellm"))
    assert done.returncode == 2, done.stderr[-2000:]
    failed = _lines(done.stdout, "FAIL")
    assert any("data/reddit" in f and "humanlm data prepare" in f for f in failed), failed
    assert any("OPENAI_API_KEY" in f for f in failed) and any(
        "ANTHROPIC_API_KEY" in f for f in failed
    )
    assert any(f.startswith("FAIL  extra vllm:") and "humanlm[vllm]" in f for f in failed)
    assert any(f.startswith("FAIL  extra litellm:") and "humanlm[litellm]" in f for f in failed)
    assert any("Qwen/Qwen3-8B" in f and "HF_HUB_OFFLINE" in f for f in failed)
    assert _lines(done.stdout, "ok    trainer options")
    assert done.stderr.strip().splitlines() == [
        f"error: {len(failed)} of {len(failed) + len(_lines(done.stdout, 'ok')) + len(_lines(done.stdout, 'note'))} "
        "preflight checks failed; fix the FAIL lines above"
    ]
    # The launch runs the same checks first: the same faults, one line each, nothing written.
    launched = _cli(*args, f"output_root={tmp_path / 'runs'}", cwd=tmp_path, env=env,
                    hide=("vllm", "litellm"))  # fmt: skip
    assert launched.returncode == 2 and "Traceback" not in launched.stderr
    problems = [line for line in launched.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == len(failed)
    assert sorted(os.listdir(tmp_path)) == []


def test_check_sends_one_judge_request_and_never_prints_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HUMANLM_TEST_JUDGE_KEY", "sk-test-secret-0123456789")
    with ScriptedServer(reply_fn=judge_reply_fn(lambda cand, real: 0.5)) as server:
        code, out, err = _run(
            ["train", "--config", str(demo_config_path()), "--check", "mode=grpo", "model.path=tiny",
             f"judge.spec=openai:gpt-5-mini@{server.base_url}",
             "judge.api_key_env=HUMANLM_TEST_JUDGE_KEY", f"output_root={tmp_path}"],
            capsys,
        )  # fmt: skip
        assert len(server.chat_requests) == 1
    assert code == 0, err
    assert "ok    judge key: " in out and "HUMANLM_TEST_JUDGE_KEY is set" in out
    assert "ok    judge request: " in out
    assert "sk-test-secret" not in out + err
    assert not any(tmp_path.iterdir())


def test_an_unreachable_judge_fails_the_check(capsys):
    # issue 24: training with an unreachable judge started anyway and failed later.
    with ScriptedServer(reply_fn=lambda request: Reply(status=503, body="{}")) as server:
        code, out, _ = _run(
            ["train", "--config", str(demo_config_path()), "--check", "mode=grpo", "model.path=tiny",
             f"judge.spec=openai:judge@{server.base_url}", "judge.max_retries=0",
             "judge.timeout_s=10"],
            capsys,
        )  # fmt: skip
    assert code == 2
    (failed,) = _lines(out, "FAIL")
    assert failed.startswith("FAIL  judge request:") and "could not be reached" in failed


@pytest.mark.parametrize(
    "option, says",
    [
        ("trainer.per_device_train_batch_size=0", "must be a whole number >= 1, got 0"),
        ("grpo.temperature=-1", "`temperature` (=-1"),
        ("grpo.top_p=1.5", "`top_p` has to be a float > 0 and < 1"),
        ("trainer.gradient_accumulation_steps=0", "must be a whole number >= 1"),
    ],
)
def test_options_the_trainer_refuses_later_are_refused_before_anything_is_written(
    tmp_path, option, says, capsys
):
    # issue 24: refused only after the model loaded and the warm-up ran (a 56 MB folder left).
    runs = tmp_path / "runs"
    code, _, err = _run(
        [
            "train",
            "--config",
            str(demo_config_path()),
            "mode=grpo",
            "model.path=tiny",
            option,
            f"output_root={runs}",
        ],
        capsys,
    )
    assert code == 2 and err.startswith("error: ") and says in err
    assert not runs.exists() or not any(runs.iterdir())
    code, out, _ = _run(
        [
            "train",
            "--config",
            str(demo_config_path()),
            "--check",
            "mode=grpo",
            "model.path=tiny",
            option,
        ],
        capsys,
    )
    assert code == 2
    (failed,) = _lines(out, "FAIL")
    assert failed.startswith("FAIL  trainer options:") and says in failed


def test_dry_run_shows_the_plan_and_the_preflight_without_a_judge_request(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = _run(
        ["train", "--config", "paper/reddit_humanlm.yaml", "--dry-run",
         "--launcher", "accelerate/fsdp_8gpu.yaml"],
        capsys,
    )  # fmt: skip
    assert code == 0, err  # the plan fits; this machine is not the cluster
    plan, checklist = out.split("# preflight\n")
    assert "# plan fits" in plan and "memory per GPU" in plan
    assert "FAIL  data: data.source data/reddit" in checklist
    assert "note  judge request: not sent in a dry run" in checklist
    assert "note  GPUs: " in checklist and "8 GPU processes" in checklist


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    """``humanlm ARGS`` in this process: exit code, stdout, stderr."""
    try:
        main(args)
        code = 0
    except SystemExit as done:
        code = done.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_judge_check_false_skips_the_request_but_not_the_other_checks():
    # issue 24: the judge check before the first step is skippable.
    from humanlm.train.preflight import run_preflight

    with ScriptedServer(reply_fn=lambda request: Reply(status=503, body="{}")) as server:
        overrides = ["mode=grpo", "model.path=tiny", f"judge.spec=openai:judge@{server.base_url}"]
        skipped = load_config(demo_config_path(), [*overrides, "judge_check=false"])
        checklist = run_preflight(skipped, ask_judge=skipped.judge_check)
        assert not server.chat_requests
        asked = load_config(demo_config_path(), [*overrides, "judge.max_retries=0"])
        failed = run_preflight(asked, ask_judge=asked.judge_check)
        assert len(server.chat_requests) == 1
    notes = {c.name: c.detail for c in checklist.checks}
    assert notes["judge request"] == "not sent (judge_check: false)"
    assert {c.name for c in failed.checks if c.status == "FAIL"} == {"judge request"}
    assert not [c for c in checklist.checks if c.status == "FAIL"]
