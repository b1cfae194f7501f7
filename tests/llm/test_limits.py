"""Backoff, Retry-After parsing and the RPM/TPM limiter."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time

import pytest

from humanlm.errors import ConfigError
from humanlm.judge import RateLimiter, RetryPolicy
from humanlm.llm.limits import backoff_delay, parse_retry_after
from tests.judge.conftest import run

RETRY_AFTER_CASES = [
    ({"Retry-After": "2"}, 2.0),  # seconds
    ({"retry-after": "0.5"}, 0.5),  # fractional, lower case
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # milliseconds win
    ({"Retry-After": "soon"}, None),  # garbage
    ({}, None),  # absent
    (None, None),  # no headers at all
]


@pytest.mark.parametrize(("headers", "seconds"), RETRY_AFTER_CASES)
def test_parse_retry_after(headers, seconds) -> None:
    assert parse_retry_after(headers) == seconds


def test_parse_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after({"Retry-After": when}) <= 31


def test_backoff_grows_is_capped_and_respects_retry_after() -> None:
    policy = RetryPolicy(backoff_s=1.0, backoff_max_s=4.0)
    rng = random.Random(0)
    delays = [backoff_delay(i, policy, rng=rng) for i in range(6)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0
    assert all(d <= 4.0 for d in delays) and delays[5] >= 2.0
    assert backoff_delay(0, policy, retry_after=7.0, rng=rng) == 7.0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"timeout_s": 0}, {"backoff_s": 2.0, "backoff_max_s": 1.0}],
)
def test_retry_policy_rejects_bad_settings(kwargs) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)


def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(rpm=600)  # 10 per second, burst of 600 -> drain the burst first

    async def go() -> float:
        for _ in range(600):
            await limiter.acquire(1)
        started = time.monotonic()
        await asyncio.gather(*(limiter.acquire(1) for _ in range(3)))
        return time.monotonic() - started

    assert 0.25 <= run(go()) < 1.0


def test_token_limiter_waits_for_tokens_and_settles() -> None:
    limiter = RateLimiter(tpm=6000)  # 100 tokens per second

    async def go() -> float:
        await limiter.acquire(6000)
        limiter.settle(6000, 5950)  # the server used 50 fewer tokens than estimated
        started = time.monotonic()
        await limiter.acquire(80)  # 50 refunded + ~30 refilled
        return time.monotonic() - started

    assert run(go()) < 0.5


def test_no_limits_never_wait() -> None:
    assert run(RateLimiter().acquire(10**9)) == 0.0
    with pytest.raises(ConfigError):
        RateLimiter(rpm=0)
