"""GRPO runs ask the judge once before anything loads: a refused request stops the run there, and
the paper presets' judge scores every rollout against a server that applies OpenAI's rules."""

from __future__ import annotations

import json

import pytest

from humanlm.cli.main import main
from humanlm.config import load_config
from humanlm.demo import demo_config_path
from humanlm.errors import JudgeUnavailableError
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


def test_a_judge_that_refuses_the_request_stops_the_run_before_anything_loads(tmp_path):
    # issue 21: before, the run loaded the model and trained a step on no score at all.
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
        with pytest.raises(JudgeUnavailableError) as info:
            run_train(cfg)
        assert len(server.chat_requests) == 1
    assert "Unsupported parameter: 'seed'" in str(info.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_cli_reports_the_refusal_in_one_line_with_exit_code_2(tmp_path, capsys):
    with refusing_server() as server:
        args = [
            "train",
            "--config",
            str(demo_config_path()),
            "mode=grpo",
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
