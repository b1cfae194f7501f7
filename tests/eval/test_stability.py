"""Stability over seeds: K samples per example, mean and standard error of every metric."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from humanlm.errors import ConfigError
from humanlm.eval import run_eval
from humanlm.eval.stability import flatten_metrics, stability_summary
from humanlm.testing import RecordedRequest, Reply, ScriptedServer


def test_flatten_keeps_measures_and_drops_counts():
    metrics = {
        "response_alignment": {"score": 20.0, "ci_low": 10.0, "ci_high": 30.0, "scored": 4},
        "state_alignment": {"score": None, "ci_low": None, "ci_high": None, "scored": 0},
        "diversity": {"simulated": {"distinct_2": 0.5, "replies": 4}, "mattr_window": 50},
        "detectability": {"accuracy": 61.0, "pairs": 4, "method": "logistic regression"},
    }
    assert flatten_metrics(metrics) == {
        "response_alignment": 20.0,
        "diversity.simulated.distinct_2": 0.5,
        "detectability.accuracy": 61.0,
    }


def test_summary_is_mean_and_standard_error():
    runs = [(0, {"m": {"score": 10.0}}), (1, {"m": {"score": 20.0}}), (2, {"m": {"score": 30.0}})]
    s = stability_summary(runs)["metrics"]["m"]
    assert s["mean"] == 20.0 and s["runs"] == 3
    assert s["se"] == pytest.approx(10.0 / math.sqrt(3), abs=1e-4)  # sd 10 over sqrt(3)
    assert s["values"] == {"0": 10.0, "1": 20.0, "2": 30.0}
    assert stability_summary(runs[:1])["metrics"]["m"]["se"] is None


def _seeded_reply(request: RecordedRequest) -> Reply:
    """A simulator whose replies grow with the sampling seed."""
    words = " ".join(["really"] * int(request.body["seed"]))
    return Reply(content=f"plan</think>\n\n<response>I am {words} not sure.</response>")


def test_seeds_evaluate_each_example_once_per_seed(make_cfg):
    with ScriptedServer(reply_fn=_seeded_reply) as sim:
        cfg = make_cfg(model=f"openai:sim@{sim.base_url}", limit=6, aspects=False, seeds=2, seed=7)
        result = run_eval(cfg)
        seeds = sorted(r.body.get("seed") for r in sim.chat_requests)
    run_dir = Path(cfg.out)
    assert (run_dir / "seed-8" / "samples.jsonl").exists()
    assert seeds == [7] * 6 + [8] * 6
    stability = json.loads((run_dir / "results.json").read_text())["stability"]
    assert stability == result.results["stability"] and stability["seeds"] == [7, 8]
    ra = stability["metrics"]["response_alignment"]
    assert ra["runs"] == 2 and ra["se"] is not None and set(ra["values"]) == {"7", "8"}
    assert "detectability.turing_distance" in stability["metrics"]
    length = stability["metrics"]["distribution.length.simulated.mean"]
    assert length["values"]["8"] == pytest.approx(length["values"]["7"] + 1)  # one word longer
    assert length["se"] == pytest.approx(0.5)  # sd of (m, m + 1) is 1/sqrt(2), over sqrt(2)
    assert result.results["protocol_notes"]["samples_per_example"] == 2
    assert "stability over seeds [7, 8]" in result.summary()


def test_seeds_must_be_positive(make_cfg):
    with pytest.raises(ConfigError, match="seeds"):
        make_cfg(seeds=0)
