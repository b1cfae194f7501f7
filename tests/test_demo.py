"""`humanlm demo`: the shipped demo base, the world judge, and a mini Table 1 (a shortened run;
`make demo` runs the full one)."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from humanlm.config import JudgeConfig
from humanlm.data.resolve import resolve_split
from humanlm.demo import DEMO_METHODS, run_demo
from humanlm.demo.base import BASE_MARKER, tokenizer_texts
from humanlm.judge import build_judge
from humanlm.judge.reward import extract_candidate
from humanlm.model.demo_base import DEMO_SPECIAL_TOKENS, demo_base_dir, train_demo_tokenizer
from humanlm.simulate.assistant import Assistant
from humanlm.simulate.conversation import run_simulate
from humanlm.simulate.scenarios import Scenario
from humanlm.simulate.user import UserSimulator
from humanlm.states import RESPONSE
from humanlm.states.modes import MODES
from humanlm.testing import ScriptedServer

from .serve.conftest import start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
ROW_KEYS = {"method", "response_alignment", "ci_low", "ci_high", "n", "valid_format"}
# How each kind of the demo world opens its replies (src/humanlm/data/demo/README.md).
KIND_OPENERS = ("NTA!", "YTA.", "NAH.", "esh")


@pytest.fixture(scope="module")
def demo_examples(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo_data")
    return {
        split: resolve_split("demo", dataset=None, split=split, work_dir=work / split)
        for split in ("train", "val", "test")
    }


@pytest.fixture(scope="module")
def base_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_base_dir())


def test_the_demo_tokenizer_round_trips_every_demo_text(demo_examples, base_tokenizer):
    texts = [t for rows in demo_examples.values() for t in tokenizer_texts(rows)]
    assert len(texts) > 1000
    for text in texts:
        ids = base_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert base_tokenizer.decode(ids) == text
    assert len(base_tokenizer) <= 2048
    for token, special in DEMO_SPECIAL_TOKENS:  # kept whole, with Qwen3's special flags
        assert len(base_tokenizer(token, add_special_tokens=False)["input_ids"]) == 1
        assert (token in base_tokenizer.all_special_tokens) is special
    assert base_tokenizer.eos_token == "<|im_end|>" and base_tokenizer.pad_token == "<|endoftext|>"


def test_tokenizer_training_is_deterministic(demo_examples):
    texts = tokenizer_texts(demo_examples["val"])
    first, second = (train_demo_tokenizer(texts, vocab_size=600) for _ in range(2))
    assert first.get_vocab() == second.get_vocab()
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()


def test_the_shipped_base_is_small_and_records_its_build():
    files = {p.name: p.stat().st_size for p in demo_base_dir().iterdir()}
    assert {"model.safetensors", "tokenizer.json", "chat_template.jinja", BASE_MARKER} <= set(files)
    assert sum(files.values()) < 8e6
    marker = json.loads((demo_base_dir() / BASE_MARKER).read_text())
    assert len(marker["losses"]) == marker["settings"]["steps"]
    assert marker["losses"][-1] < marker["losses"][0] / 4  # the warm-up learned the world


def test_the_world_judge_scores_states_against_the_reference_state(demo_examples):
    # A test row and the reference states of every kind on the same post: the world judge must
    # rank the row's own kind first, by a wide margin, on every latent state.
    rows = demo_examples["test"][:8]  # one post, eight users of four kinds
    world = build_judge(JudgeConfig("embedding:demo-world"))
    minilm = build_judge(JudgeConfig("embedding:minilm"))
    states = [json.loads(r["states"]) for r in rows]
    row, own = rows[0], states[0]
    others = [s for s in states if s["stance"] != own["stance"]]
    for state in ("stance", "emotion", "belief", "value", "goal", "communication"):
        wrong = sorted({s[state] for s in others})
        candidates = [own[state], *wrong]

        def scores(judge, state=state, candidates=candidates):
            verdict = asyncio.run(
                judge.judge_group(
                    context=[], ground_truth=row["ground_truth"], state=state, candidates=candidates
                )
            )
            return [v.score for v in verdict.verdicts]

        right, *rest = scores(world)
        assert right == pytest.approx(1.0) and max(rest) < 0.7, (state, right, rest)
        m_right, *m_rest = scores(minilm)
        assert right - max(rest) > m_right - max(m_rest)  # separates kinds better than MiniLM


@pytest.mark.slow
def test_the_build_script_rebuilds_the_shipped_loss_curve(tmp_path):
    done = subprocess.run(
        [sys.executable, "scripts/build_demo_base.py", "--out", str(tmp_path), "--steps", "8"]
        + ["--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the first 8 losses match" in done.stdout


@pytest.mark.slow
def test_the_served_base_answers_a_chat_request_of_the_world_in_a_kind_of_the_world(
    demo_examples, tmp_path
):
    # A held-out post and a user's persona, sent as the README's openai snippet sends a chat.
    row = demo_examples["test"][0]
    [post] = row["messages"]
    server = start_server(demo_base_dir(), "--mode", "humanlm", log=tmp_path / "serve.log")
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)
        reply = client.chat.completions.create(
            model="model",
            messages=[
                {"role": "system", "content": row["persona"]},
                {"role": "user", "name": post["name"], "content": post["content"]},
            ],
            seed=0,
        )
    finally:
        stop_server(server)
    text = reply.choices[0].message.content
    assert text.startswith(KIND_OPENERS), text
    assert len(text.split()) >= 5 and not reply.choices[0].model_extra["humanlm"]["ended"]


@pytest.mark.slow
def test_simulate_with_the_base_writes_multi_turn_conversations(tmp_path):
    scenarios = [
        Scenario(id=f"s{i}", persona=persona)
        for i, persona in enumerate(["A retired teacher.", "A student who jokes a lot."])
    ]
    with ScriptedServer(reply_fn=lambda request: "Could you tell me more?", model="bot") as bot:
        run_simulate(
            scenarios=scenarios,
            user=UserSimulator.from_spec(f"hf:{demo_base_dir()}", mode="humanlm"),
            assistant=Assistant.from_spec(f"openai:bot@{bot.base_url}"),
            out_dir=tmp_path,
            max_turns=3,
        )
    records = [json.loads(x) for x in (tmp_path / "conversations.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        assert record["error"] is None and record["end_reason"] == "max_turns", record
        user_turns = [m["content"] for m in record["messages"] if m["role"] == "user"]
        assert len(user_turns) >= 3 and all(t.strip() for t in user_turns)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(
        out,
        overrides=[
            "trainer.max_steps=2",
            "trainer.per_device_train_batch_size=8",
            "grpo.max_completion_length=24",
        ],
        progress=False,
    )
    return result


@pytest.mark.slow
def test_table_has_one_row_per_method_with_the_schema(demo):
    table = json.loads(demo.table_path.read_text())
    assert [r["method"] for r in table["rows"]] == ["base", "sft", "grpo", "humanlm"]
    for row in table["rows"]:
        assert set(row) >= ROW_KEYS
        assert row["n"] == 32
        assert 0 <= row["valid_format"] <= 100
        if row["response_alignment"] is not None:
            assert row["ci_low"] <= row["response_alignment"] <= row["ci_high"]


@pytest.mark.slow
def test_samples_were_parsed_with_each_modes_format(demo):
    for method, mode in DEMO_METHODS:
        spec = MODES[mode]
        records = [
            json.loads(x)
            for x in (demo.out_dir / "eval" / method / "samples.jsonl").read_text().splitlines()
        ]
        assert len(records) == 32
        for r in records:
            expected = extract_candidate(
                r["generation"], RESPONSE, tagged=spec.state_set != "r_no_tag"
            )
            assert r["strict_response"] == expected  # the strict format, as training reads it
            assert r["valid_format"] is (expected is not None)
            assert r["response"] is None or "<response>" not in r["response"]  # lenient, no markup
        if spec.state_set != "r_no_tag":  # a strict parse: thinking exactly when the mode thinks
            assert all(
                (r["thinking"] is not None) is spec.thinking for r in records if r["valid_format"]
            )


@pytest.mark.slow
def test_report_puts_the_comparison_first_and_the_paper_apart(demo):
    report = demo.report.read_text()
    first_table = report.index("| method |")
    assert report.index("| base |") > first_table
    assert report.index("paper's numbers") > report.index("| humanlm |")
    assert "synthetic" in report and "wall time" in report
    assert "Qwen3-8b" not in report[: report.index("paper's numbers")]
    for name in ("reward.png", "loss.png"):
        assert (demo.out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_metrics_hold_humanlm_rewards_per_step(demo):
    lines = [json.loads(x) for x in demo.metrics.read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    assert all("reward" in x for x in lines)
