"""The ledger: what a run spent on an LLM (judge, persona or trace model) and how often it failed.

One ``Ledger`` per judge (and so per run). It counts requests, cache hits, tokens (from the
``usage`` the server reports), failures by reason and latencies, estimates the cost from a price
table, and keeps the last reward batch's unscored fraction so a trainer can stop when too much
of a step went unscored.

Example:
    >>> ledger = Ledger(model="gpt-5-mini")
    >>> ledger.record_call(latency_s=0.8, input_tokens=1200, output_tokens=300)
    >>> round(ledger.cost_usd(), 6)
    0.0009
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from humanlm.files import write_json

__all__ = ["DEFAULT_PRICES", "LEDGER_FILE", "Ledger", "Price", "accumulate", "find_price"]

LEDGER_FILE = "judge_ledger.json"
_ADDITIVE = (
    "calls", "groups", "cache_hits", "no_call", "input_tokens", "output_tokens", "hedges",
    "usage_invalid",
)  # fmt: skip
_COUNTERS = ("failures", "retries")


@dataclass(frozen=True)
class Price:
    """US dollars per one million input and output tokens."""

    input_per_m: float
    output_per_m: float


# List prices (USD per 1M tokens) published by the providers in 2025; override them with
# ``prices=`` when they change or for your own contract.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.0),
    "gpt-5-mini": Price(0.25, 2.0),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4o": Price(2.50, 10.0),
    "gpt-4o-mini": Price(0.15, 0.60),
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-sonnet-4-5": Price(3.0, 15.0),
}


def find_price(model: str, prices: Mapping[str, Price]) -> Price | None:
    """The price of ``model``: exact name, then without a ``provider/`` prefix, then the longest
    table name the model starts with (dated snapshots such as ``claude-haiku-4-5-20251001``),
    then litellm's maintained price map when the optional litellm package is installed."""
    for name in (model, model.rsplit("/", 1)[-1]):
        if name in prices:
            return prices[name]
    short = model.rsplit("/", 1)[-1]
    matches = [k for k in prices if short.startswith(k + "-")]
    if matches:
        return prices[max(matches, key=len)]
    return _litellm_price(model)


def _litellm_price(model: str) -> Price | None:
    """A price from litellm's bundled map (read offline), or ``None``."""
    import importlib.util

    if importlib.util.find_spec("litellm") is None:
        return None
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    for name in (model, model.rsplit("/", 1)[-1]):
        entry = litellm.model_cost.get(name)
        if entry and entry.get("input_cost_per_token") is not None:
            return Price(
                entry["input_cost_per_token"] * 1e6, entry.get("output_cost_per_token", 0.0) * 1e6
            )
    return None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100.0 * len(ordered)) - 1)
    return ordered[rank]


@dataclass
class Ledger:
    """Counters of one judge over a run.

    Attributes:
        model: the judge model, used to look up its price.
        prices: model -> ``Price``; defaults to ``DEFAULT_PRICES`` with overrides merged in.
        calls: requests sent to the judge server (retries included).
        groups: judgements asked for (``judge_group`` / ``judge_aspects`` calls).
        cache_hits: judgements answered from the cache.
        no_call: judgements decided without a request (all candidates empty or exact copies).
        input_tokens / output_tokens: token counts reported by the server.
        usage_invalid: answered requests whose ``usage`` held a count that is not a non-negative
            integer: their tokens are unknown and left out of the counts (and of the cost,
            which is then a lower bound); their replies stand.
        failures: unscored judgements by final reason.
        retries: failed attempts that were retried or ended a call, by reason.
        latencies: seconds per successful request.
        hedges: copies sent beside a slow request (``RetryPolicy.hedge_after_s``). Every request
            of a pair is one of ``calls``, the one that lost (cancelled) included.
        last_batch_unscored_frac: unscored share of the samples of the last reward batch.
        last_batch_failures: failure reasons of the last reward batch.
        last_refusal: the server's message for the latest request it refused (HTTP 4xx, such
            as a field the model does not take), secrets removed; ``None`` if none was.
    """

    model: str = ""
    prices: dict[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    calls: int = 0
    groups: int = 0
    cache_hits: int = 0
    no_call: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usage_invalid: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    hedges: int = 0
    last_batch_unscored_frac: float | None = None
    last_batch_failures: dict[str, int] = field(default_factory=dict)
    last_refusal: str | None = None

    def record_call(
        self,
        *,
        latency_s: float,
        input_tokens: int,
        output_tokens: int,
        usage_valid: bool = True,
    ) -> None:
        """Count one request that got an answer; ``usage_valid=False``: its usage is unknown."""
        self.calls += 1
        self.latencies.append(latency_s)
        if not usage_valid:
            self.usage_invalid += 1
            return
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens

    def record_attempt_failure(
        self, reason: str, *, sent: bool = True, detail: str | None = None
    ) -> None:
        """Count one failed attempt (``sent``: a request went out and counts as a call);
        ``detail`` is the server's message of a refused request."""
        self.calls += int(sent)
        self.retries[reason] += 1
        if detail:
            self.last_refusal = detail

    def record_hedge(self) -> None:
        """Count one copy sent beside a slow request (its outcome is counted as any call's)."""
        self.hedges += 1

    def record_cancelled(self) -> None:
        """Count a request given up because its twin answered first: sent, so a call."""
        self.calls += 1

    def record_unscored(self, reason: str) -> None:
        """Count one judgement left unscored after its retries."""
        self.failures[reason] += 1

    def record_batch(self, *, samples: int, unscored: int, reasons: Mapping[str, int]) -> None:
        """Remember the last reward batch (for a "stop if too much is unscored" check)."""
        self.last_batch_unscored_frac = unscored / samples if samples else 0.0
        self.last_batch_failures = dict(reasons)

    @property
    def unscored(self) -> int:
        return sum(self.failures.values())

    def latency_percentile(self, q: float) -> float | None:
        """The ``q``-th percentile of request latency in seconds (nearest rank)."""
        return _percentile(self.latencies, q)

    def cost_usd(self) -> float | None:
        """Estimated cost in US dollars, or ``None`` when the model has no price."""
        price = find_price(self.model, self.prices)
        if price is None:
            return None
        return (
            self.input_tokens * price.input_per_m + self.output_tokens * price.output_per_m
        ) / 1e6

    def snapshot(self) -> dict[str, int]:
        """The additive counters, for deltas between two points of a run."""
        return {
            "calls": self.calls,
            "groups": self.groups,
            "cache_hits": self.cache_hits,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "unscored": self.unscored,
            "hedges": self.hedges,
            "usage_invalid": self.usage_invalid,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready data."""
        p50, p95 = self.latency_percentile(50), self.latency_percentile(95)
        return {
            "model": self.model,
            **self.snapshot(),
            "no_call": self.no_call,
            "failures": dict(sorted(self.failures.items())),
            "retries": dict(sorted(self.retries.items())),
            "latency_p50_s": None if p50 is None else round(p50, 4),
            "latency_p95_s": None if p95 is None else round(p95, 4),
            "cost_usd": self.cost_usd(),
            "last_batch_unscored_frac": self.last_batch_unscored_frac,
            "last_batch_failures": self.last_batch_failures,
            "last_refusal": self.last_refusal,
        }

    def write(self, folder: str | os.PathLike[str], *, accumulate_runs: bool = False) -> Path:
        """Write ``judge_ledger.json`` into ``folder`` (atomically) and return its path.

        With ``accumulate_runs`` the counts of the ledger already in ``folder`` (earlier
        invocations of a resumed run) are added in; each invocation's own figures are kept under
        ``invocations``.
        """
        path = Path(folder) / LEDGER_FILE
        current = self.to_dict()
        previous = _read_ledger(path) if accumulate_runs else None
        write_json(path, accumulate(previous, current))
        return path

    def summary(self) -> str:
        """One paragraph for the end of a run."""
        p50, p95 = self.latency_percentile(50), self.latency_percentile(95)
        latency = "no requests" if p50 is None else f"latency p50 {p50:.2f}s / p95 {p95:.2f}s"
        cost = self.cost_usd()
        money = "cost unknown (no price for this model)" if cost is None else f"~${cost:.4f}"
        if self.usage_invalid:
            money += (
                f" (usage unknown for {self.usage_invalid} requests whose server reported "
                "invalid token counts; not counted)"
            )
        failed = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "none"
        retried = ", ".join(f"{k} {v}" for k, v in sorted(self.retries.items())) or "none"
        return (
            f"Judge {self.model or '?'}: {self.groups} judgements, {self.calls} requests, "
            f"{self.cache_hits} cache hits, {self.no_call} decided without a request; "
            f"{self.input_tokens:,} input + {self.output_tokens:,} output tokens, {money}; "
            f"{latency}; unscored: {failed}; failed attempts: {retried}"
            + (f"; last refused request: {self.last_refusal}." if self.last_refusal else ".")
        )


def _read_ledger(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def accumulate(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> dict[str, Any]:
    """A ledger dict over every invocation: counts summed, ``invocations`` lists each one.

    Latency percentiles, the last batch and the model are the latest invocation's; the cost is
    summed (``None`` when any invocation's is unknown).
    """
    runs: list[dict[str, Any]] = []
    if previous:
        earlier = previous.get("invocations")
        if isinstance(earlier, list):
            runs.extend(dict(r) for r in earlier if isinstance(r, dict))
        else:
            runs.append({k: v for k, v in previous.items() if k != "invocations"})
    runs.append(dict(current))
    total: dict[str, Any] = dict(current)
    for name in _ADDITIVE:
        total[name] = sum(int(r.get(name) or 0) for r in runs)
    for name in _COUNTERS:
        summed: Counter[str] = Counter()
        for run in runs:
            summed.update({str(k): int(v) for k, v in (run.get(name) or {}).items()})
        total[name] = dict(sorted(summed.items()))
    total["unscored"] = sum(total["failures"].values())
    costs = [r.get("cost_usd") for r in runs]
    total["cost_usd"] = None if any(c is None for c in costs) else sum(costs)
    total["invocations"] = runs
    return total
