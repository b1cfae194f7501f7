"""`humanlm demo` writes its report, per-step metrics and plot (a shortened run; `make demo` runs the full one)."""

import json

import pytest

from humanlm.demo import run_demo
from humanlm.states import STATE_NAMES

pytestmark = pytest.mark.slow


def test_demo_writes_report_metrics_and_plot(tmp_path, tiny_model_dir):
    result = run_demo(
        tmp_path / "demo",
        overrides=[
            f"model.path={tiny_model_dir}",
            "warmup.steps=4",
            "trainer.max_steps=2",
            "trainer.save_steps=2",
            "trainer.per_device_train_batch_size=8",
            "grpo.max_completion_length=16",
        ],
    )
    lines = [json.loads(x) for x in result.metrics.read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    assert all("reward" in x for x in lines)
    assert all(key.split("/")[1] in STATE_NAMES for x in lines for key in x if "/" in key)
    assert result.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = result.report.read_text()
    assert "proves that the HumanLM pipeline" in report and "reward.png" in report
    assert "response_alignment" in report
    assert (tmp_path / "demo" / "eval" / "samples.jsonl").is_file()
    assert (tmp_path / "demo" / "eval" / "report.html").is_file()
