"""Population metrics in ``run_eval``: scripted simulators with known behaviour move each metric.

Three simulators answer the demo split (12 examples, reddit and wildchat): one gives the same
reply every time, one copies the real reply, one strings random words together.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from humanlm.eval import run_eval
from humanlm.generate.openai import to_chat_messages
from humanlm.generate.prompt import build_sim_prompt
from humanlm.population.metrics import paired_replies, population_metrics
from humanlm.testing import RecordedRequest, Reply, ScriptedServer

_SAME = "I think you should talk to them about it."


def _respond(text: str) -> Reply:
    return Reply(content=f"plan</think>\n\n<response>{text}</response>")


def _copying(examples: list[dict]) -> Callable[[RecordedRequest], Reply]:
    """A simulator that recognises the example by its chat messages and answers its real reply."""
    truths = {}
    for ex in examples:
        messages = to_chat_messages(build_sim_prompt(ex, thinking=True).messages)
        truths[json.dumps(messages, sort_keys=True)] = ex["ground_truth"]

    def reply(request: RecordedRequest) -> Reply:
        return _respond(truths[json.dumps(request.messages, sort_keys=True)])

    return reply


def _random(request: RecordedRequest) -> Reply:
    rng = random.Random(len(request.prompt))
    words = ["zebra", "quantum", "pickle", "orbit", "velvet", "sprocket", "lagoon", "tundra"]
    return _respond(" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))))


def _run(make_cfg, tmp_path: Path, reply_fn, name: str) -> dict:
    with ScriptedServer(reply_fn=reply_fn) as sim:
        cfg = make_cfg(
            model=f"openai:sim@{sim.base_url}", name=name, out=str(tmp_path / name), aspects=False
        )
        return run_eval(cfg).results


@pytest.fixture
def three_runs(make_cfg, tmp_path, demo_examples) -> dict[str, dict]:
    return {
        "same": _run(make_cfg, tmp_path, lambda r: _respond(_SAME), "same"),
        "copy": _run(make_cfg, tmp_path, _copying(demo_examples), "copy"),
        "random": _run(make_cfg, tmp_path, _random, "random"),
    }


def test_scripted_simulators_move_every_population_metric(three_runs):
    same, copy, rand = (three_runs[k]["metrics"] for k in ("same", "copy", "random"))
    # Diversity: the same reply is far less diverse than the real replies; copies match them.
    div = same["diversity"]
    assert div["simulated"]["distinct_2"] < 0.2 * div["real"]["distinct_2"]
    assert div["ratio"]["distinct_2"] < 0.2 and div["ratio"]["mattr"] < 1
    assert div["simulated"]["yules_k"] > div["real"]["yules_k"]
    assert all(v == 1.0 for v in copy["diversity"]["ratio"].values())
    assert div["mattr_window"] == 50 and div["hdd_sample"] == 42
    # Distribution: copies have distance 0; the others are away from the real replies.
    assert copy["distribution"]["length"]["distance"] == 0.0
    assert copy["distribution"]["verdict"]["distance"] == 0.0
    for metrics in (same, rand):
        assert metrics["distribution"]["length"]["distance"] > 5
        assert metrics["distribution"]["verdict"]["distance"] > 0.3
    assert same["distribution"]["verdict"]["simulated"]["none"] == 1.0
    assert copy["distribution"]["verdict"]["real"]["NTA"] > 0  # the demo's reddit replies
    # Detectability: copies are at chance, the others are told apart.
    assert copy["detectability"]["accuracy"] == pytest.approx(50.0)
    assert copy["detectability"]["turing_distance"] == pytest.approx(0.0)
    for metrics in (same, rand):
        assert metrics["detectability"]["accuracy"] >= 80
        assert metrics["detectability"]["turing_distance"] >= 30
    assert same["detectability"]["pairs"] == 12


def test_population_metrics_are_broken_down_per_data_source(three_runs):
    results = three_runs["same"]
    reddit = results["by_data_source"]["reddit"]["metrics"]
    wildchat = results["by_data_source"]["wildchat"]["metrics"]
    assert "verdict" in reddit["distribution"] and "verdict" not in wildchat["distribution"]
    assert (
        reddit["diversity"]["simulated"]["replies"]
        == results["by_data_source"]["reddit"]["examples"]
    )
    assert reddit["detectability"]["pairs"] + wildchat["detectability"]["pairs"] == 12
    # The overall verdict block is the reddit one.
    assert results["metrics"]["distribution"]["verdict"] == reddit["distribution"]["verdict"]


def test_results_file_holds_the_blocks_and_records_without_reply_are_left_out(make_cfg, tmp_path):
    cfg = make_cfg(out=str(tmp_path / "echo"), aspects=False)
    result = run_eval(cfg)
    saved = json.loads((Path(cfg.out) / "results.json").read_text())
    assert saved["metrics"]["diversity"] == result.results["metrics"]["diversity"]
    records = [json.loads(x) for x in (Path(cfg.out) / "samples.jsonl").read_text().splitlines()]
    simulated, _, left_out = paired_replies(records)
    assert len(simulated) + left_out == 12  # lenient extraction: every reply here has a text
    without = [dict(records[0], response=None), *records[1:]]
    assert paired_replies(without)[2] == left_out + 1  # a record without a reply is left out
    assert saved["metrics"]["diversity"]["left_out"] == left_out
    assert saved["metrics"]["detectability"]["pairs"] == len(simulated)
    assert "diversity simulated/real" in result.summary()
    assert "detectability: accuracy" in result.summary()


def test_population_can_be_switched_off(make_cfg, tmp_path):
    results = run_eval(make_cfg(out=str(tmp_path / "off"), aspects=False, population=False))
    assert "diversity" not in results.results["metrics"]


def test_population_metrics_of_no_records():
    blocks = population_metrics([])
    assert blocks["by_data_source"] == {}
    assert blocks["overall"]["detectability"]["accuracy"] is None


def test_detector_uses_minilm_embeddings_when_embedding_is_on(make_cfg, tmp_path, demo_examples):
    def run(reply_fn, name):
        with ScriptedServer(reply_fn=reply_fn) as sim:
            cfg = make_cfg(model=f"openai:sim@{sim.base_url}", name=name, aspects=False,
                           embedding=True, out=str(tmp_path / name))  # fmt: skip
            return run_eval(cfg).results["metrics"]["detectability"]

    copies = run(_copying(demo_examples), "copy")
    same = run(lambda r: _respond(_SAME), "same")
    assert (
        copies["method"]
        == same["method"]
        == ("logistic regression on style features + MiniLM embeddings")
    )
    assert copies["accuracy"] == pytest.approx(50.0) and same["accuracy"] >= 80


def test_embedding_memo_serves_the_detector_what_the_similarity_metric_encoded():
    import numpy as np

    from humanlm.population.metrics import EmbeddingMemo

    class Counting:  # a scripted encoder that records what it was asked
        def __init__(self):
            self.asked: list[list[str]] = []

        def encode(self, texts):
            self.asked.append(list(texts))
            return np.array([[float(len(t)), 1.0] for t in texts])

    inner = Counting()
    memo = EmbeddingMemo(inner)
    memo.encode(["real one", "simulated"])  # as the similarity metric does during the run
    vectors = memo.vectors(["simulated", "real one", "resumed example"])
    assert inner.asked == [["real one", "simulated"], ["resumed example"]]
    assert vectors.tolist() == [[9.0, 1.0], [8.0, 1.0], [15.0, 1.0]]
