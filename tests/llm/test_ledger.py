"""The ledger: counters, latency percentiles, cost from a price table, JSON and summary."""

from __future__ import annotations

import json

import pytest

from humanlm.judge import DEFAULT_PRICES, Ledger, Price
from humanlm.llm.ledger import find_price

PRICE_CASES = [
    ("gpt-5-mini", DEFAULT_PRICES["gpt-5-mini"]),  # exact
    ("openai/gpt-5-mini", DEFAULT_PRICES["gpt-5-mini"]),  # provider prefix
    ("anthropic/claude-haiku-4-5-20251001", DEFAULT_PRICES["claude-haiku-4-5"]),  # snapshot
    ("gpt-5-mini-2025-08-07", DEFAULT_PRICES["gpt-5-mini"]),  # longest match, not gpt-5
    ("my-local-model", None),  # unknown
]


@pytest.mark.parametrize(("model", "price"), PRICE_CASES)
def test_find_price(model: str, price: Price | None) -> None:
    assert find_price(model, DEFAULT_PRICES) == price


def test_ledger_counts_costs_and_percentiles(tmp_path) -> None:
    ledger = Ledger(model="house-model", prices={"house-model": Price(1.0, 10.0)})
    for i in range(1, 21):
        ledger.record_call(latency_s=i / 10, input_tokens=1000, output_tokens=100)
    ledger.record_attempt_failure("rate_limited")
    ledger.record_attempt_failure("empty", sent=False)
    ledger.record_unscored("timeout")
    ledger.record_batch(samples=8, unscored=2, reasons={"timeout": 2})
    assert ledger.calls == 21 and ledger.unscored == 1
    assert ledger.latency_percentile(50) == 1.0 and ledger.latency_percentile(95) == 1.9
    assert ledger.cost_usd() == pytest.approx((20_000 * 1.0 + 2_000 * 10.0) / 1e6)
    data = json.loads(ledger.write(tmp_path).read_text())
    assert (tmp_path / "judge_ledger.json").exists()
    assert data["failures"] == {"timeout": 1}
    assert data["retries"] == {"empty": 1, "rate_limited": 1}
    assert data["last_batch_unscored_frac"] == 0.25
    assert data["input_tokens"] == 20_000 and data["latency_p95_s"] == 1.9
    summary = ledger.summary()
    assert "21 requests" in summary and "timeout 1" in summary and "$0.04" in summary


def test_empty_ledger_summary_and_unknown_price() -> None:
    ledger = Ledger(model="nobody-knows")
    assert ledger.cost_usd() is None and ledger.latency_percentile(50) is None
    assert "no requests" in ledger.summary() and "cost unknown" in ledger.summary()
    assert ledger.to_dict()["cost_usd"] is None


def test_written_ledgers_accumulate_over_invocations(tmp_path):
    first = Ledger(model="gpt-5-mini")
    first.record_call(latency_s=0.5, input_tokens=100, output_tokens=10)
    first.record_unscored("timeout")
    first.write(tmp_path, accumulate_runs=True)
    second = Ledger(model="gpt-5-mini")
    second.record_call(latency_s=0.5, input_tokens=50, output_tokens=5)
    second.record_attempt_failure("server_error")
    path = second.write(tmp_path, accumulate_runs=True)
    data = json.loads(path.read_text())
    assert (data["calls"], data["input_tokens"], data["unscored"]) == (3, 150, 1)
    assert data["failures"] == {"timeout": 1} and data["retries"] == {"server_error": 1}
    assert [r["calls"] for r in data["invocations"]] == [1, 2]
    fresh = Ledger(model="gpt-5-mini").write(tmp_path)  # without accumulate: this run alone
    assert json.loads(fresh.read_text())["calls"] == 0


def test_calls_with_invalid_usage_are_counted_apart_and_add_up_over_runs(tmp_path) -> None:
    # issue 24: negative counts went into the tokens and the cost (minus 1.5 million dollars).
    first = Ledger(model="house-model", prices={"house-model": Price(1.0, 10.0)})
    first.record_call(latency_s=0.1, input_tokens=1000, output_tokens=100)
    first.record_call(latency_s=0.1, input_tokens=0, output_tokens=0, usage_valid=False)
    assert (first.calls, first.usage_invalid, first.input_tokens) == (2, 1, 1000)
    assert first.cost_usd() == pytest.approx(0.002)
    assert "usage unknown for 1 requests" in first.summary()
    first.write(tmp_path)
    second = Ledger(model="house-model", prices={"house-model": Price(1.0, 10.0)})
    second.record_call(latency_s=0.1, input_tokens=0, output_tokens=0, usage_valid=False)
    second.write(tmp_path, accumulate_runs=True)
    total = json.loads((tmp_path / "judge_ledger.json").read_text())
    assert total["usage_invalid"] == 2 and total["calls"] == 3 and total["input_tokens"] == 1000
