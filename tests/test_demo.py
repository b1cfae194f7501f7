"""`humanlm demo`: a mini Table 1 (a shortened run; `make demo` runs the full one)."""

import json

import pytest

from humanlm.demo import DEMO_METHODS, run_demo
from humanlm.judge.reward import extract_candidate
from humanlm.states import RESPONSE
from humanlm.states.modes import MODES

pytestmark = pytest.mark.slow

ROW_KEYS = {"method", "response_alignment", "ci_low", "ci_high", "n", "valid_format"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(
        out,
        overrides=[
            f"model.path={tiny_model_dir}",
            "warmup.steps=20",
            "trainer.max_steps=2",
            "trainer.per_device_train_batch_size=8",
            "grpo.max_completion_length=24",
        ],
        progress=False,
    )
    return result


def test_table_has_one_row_per_method_with_the_schema(demo):
    table = json.loads(demo.table_path.read_text())
    assert [r["method"] for r in table["rows"]] == ["base", "sft", "grpo", "humanlm"]
    for row in table["rows"]:
        assert set(row) >= ROW_KEYS
        assert row["n"] == 32
        assert 0 <= row["valid_format"] <= 100
        if row["response_alignment"] is not None:
            assert row["ci_low"] <= row["response_alignment"] <= row["ci_high"]


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


def test_report_puts_the_comparison_first_and_the_paper_apart(demo):
    report = demo.report.read_text()
    first_table = report.index("| method |")
    assert report.index("| base |") > first_table
    assert report.index("paper's numbers") > report.index("| humanlm |")
    assert "synthetic" in report and "wall time" in report
    assert "Qwen3-8b" not in report[: report.index("paper's numbers")]
    for name in ("reward.png", "loss.png"):
        assert (demo.out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_hold_humanlm_rewards_per_step(demo):
    lines = [json.loads(x) for x in demo.metrics.read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    assert all("reward" in x for x in lines)
