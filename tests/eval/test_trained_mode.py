"""A trained checkpoint is evaluated with its training mode: a real tiny SFT run, then
``humanlm eval`` on the checkpoint that ``best_checkpoint.json`` names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from humanlm.cli.eval import eval_command
from humanlm.config import load_config
from humanlm.data.resolve import resolve_split
from humanlm.demo import demo_config_path
from humanlm.states import RESPONSE
from humanlm.states.examples import render_prompt
from humanlm.states.mode_file import MODE_FILE
from humanlm.testing import Reply, ScriptedServer
from humanlm.train.run import run_train

pytestmark = pytest.mark.slow

app = typer.Typer()
app.command("eval")(eval_command)
runner = CliRunner()
LIMIT = 3


@pytest.fixture(scope="module")
def sft_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SFT step on the tiny model, validated and saved at that step."""
    from humanlm.testing.judge_replies import judge_reply_fn

    with ScriptedServer(reply_fn=judge_reply_fn()) as judge:
        cfg = load_config(
            demo_config_path(),
            [
                f"model.path={tiny_model_dir}",
                "mode=sft",
                "warmup.steps=0",
                "data.limit=4",
                "trainer.max_steps=1",
                "trainer.save_steps=1",
                "trainer.per_device_train_batch_size=4",
                "sft.max_length=1024",
                "val_every=1",
                "val_limit=2",
                f"eval_judge.spec=openai:judge@{judge.base_url}",
            ],
        )
        result = run_train(cfg, run_dir=tmp_path_factory.mktemp("train") / "run")
    return result.run_dir


def _eval_args(model: str, judge_url: str, out: Path, *extra: str) -> list[str]:
    return [
        "--model", model, "--data", "demo", "--limit", str(LIMIT),
        "--judge", f"openai:judge@{judge_url}", "--out", str(out), "--no-embedding",
        "--no-aspects", "--no-population", "--no-progress", "--max-new-tokens", "8", *extra,
    ]  # fmt: skip


def test_the_best_checkpoint_is_evaluated_with_its_training_mode(sft_run, judge_server, tmp_path):
    # issue 21: best_checkpoint.json named a folder without a mode, so eval fell back to the
    # tagged prompt with thinking on; an SFT checkpoint must get the untagged prompt, no thinking.
    best = json.loads((sft_run / "best_checkpoint.json").read_text())
    checkpoint = Path(best["checkpoint"])
    assert checkpoint.name == "checkpoint-1"
    assert json.loads((checkpoint / MODE_FILE).read_text())["mode"] == "sft"
    assert json.loads((sft_run / "model" / MODE_FILE).read_text())["mode"] == "sft"

    # The checkpoint served by a text-completion server: the prompts it receives are the ones
    # SFT trained on.
    with ScriptedServer(reply_fn=lambda request: Reply(content="fine by me")) as sim:
        out = tmp_path / "served"
        spec = f"openai:{checkpoint}@{sim.base_url}"
        extra = ("--simulator-api", "completions", "--tokenizer", str(checkpoint))
        result = runner.invoke(app, _eval_args(spec, judge_server.base_url, out, *extra))
        assert result.exit_code == 0, result.output
        received = [r.prompt for r in sim.completion_requests]
    examples = resolve_split("demo", dataset="demo", split="test", work_dir=tmp_path / "data")
    sft = {render_prompt(ex, RESPONSE, state_set="r_no_tag", thinking=False) for ex in examples}
    default = {render_prompt(ex, RESPONSE, state_set="r", thinking=True) for ex in examples}
    assert len(received) == LIMIT and set(received) <= sft and not set(received) & default

    # The checkpoint loaded in process: the run records the mode and where it came from.
    out = tmp_path / "hf"
    result = runner.invoke(app, _eval_args(f"hf:{checkpoint}", judge_server.base_url, out))
    assert result.exit_code == 0, result.output
    notes = json.loads((out / "results.json").read_text())["protocol_notes"]
    assert (notes["mode"], notes["mode_from"], notes["mode_file"]) == (
        "sft",
        "model",
        str(checkpoint / MODE_FILE),
    )
    assert (notes["state_set"], notes["thinking"]) == ("r_no_tag", False)


# What the SFT prompt asks for, and what the default (HumanLM) prompt asks for instead.
SFT_TASK = "with no tags, labels or quotation marks"
TAGGED_TASK = "<response>your message</response>"


def _user_prompts(server: ScriptedServer) -> list[str]:
    """Every prompt text a simulated-user backend received (chat messages or a text prompt)."""
    texts = [r.prompt for r in server.completion_requests]
    texts += ["\n".join(str(m.get("content")) for m in r.messages) for r in server.chat_requests]
    return texts


@pytest.mark.parametrize("where", ["model", "checkpoint"])
def test_simulate_prompts_an_sft_model_in_its_mode_without_mode(sft_run, tmp_path, where):
    # issue 22: simulate read no training mode and prompted every model as HumanLM.
    from humanlm.cli.main import _register
    from humanlm.cli.main import app as main_app

    _register()
    folder = sft_run / "model" if where == "model" else sft_run / "checkpoints" / "checkpoint-1"
    assert json.loads((folder / MODE_FILE).read_text())["mode"] == "sft"
    scenarios = tmp_path / "s.jsonl"
    scenarios.write_text('{"id": "one", "persona": "A student."}\n')
    with (
        ScriptedServer(reply_fn=lambda request: "How can I help?", model="bot") as bot,
        ScriptedServer(reply_fn=lambda request: "never mind") as user,
    ):
        args = [
            "simulate", "--user", f"openai:{folder}@{user.base_url}",
            "--assistant", f"openai:bot@{bot.base_url}", "--scenarios", str(scenarios),
            "--max-turns", "1", "--out", str(tmp_path / "sim"),
        ]  # fmt: skip
        result = CliRunner().invoke(main_app, args)
        prompts = _user_prompts(user)
    assert result.exit_code == 0, result.output
    assert prompts and all(SFT_TASK in p and TAGGED_TASK not in p for p in prompts)


def test_serve_prompts_an_sft_checkpoint_in_its_mode_without_mode(sft_run, tmp_path):
    # issue 22: serve read no training mode and prompted every model as HumanLM.
    import httpx

    from tests.serve.conftest import start_server, stop_server

    checkpoint = sft_run / "checkpoints" / "checkpoint-1"
    with ScriptedServer(reply_fn=lambda request: "never mind") as backend:
        # start_server formats "KIND:MODEL": the model here is the folder at the backend's URL.
        server = start_server(f"{checkpoint}@{backend.base_url}", kind="openai")
        try:
            answer = httpx.post(
                f"{server.base_url}/chat/completions",
                headers={"Authorization": f"Bearer {server.api_key}"},
                json={
                    "model": "user",
                    "messages": [
                        {"role": "system", "content": "A student."},
                        {"role": "assistant", "content": "How can I help?"},
                    ],
                },
                timeout=120,
            )
        finally:
            stop_server(server)
        prompts = _user_prompts(backend)
    assert answer.status_code == 200, answer.text
    assert prompts and all(SFT_TASK in p and TAGGED_TASK not in p for p in prompts)
