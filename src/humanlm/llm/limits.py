"""Retry policy, backoff and a requests/tokens-per-minute limiter for every LLM call."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from humanlm.errors import ConfigError

__all__ = ["RateLimiter", "RetryPolicy", "backoff_delay", "parse_retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one judge call tries before it gives up and leaves its group unscored.

    Attributes:
        max_retries: re-attempts after the first request, shared by transport failures (429,
            5xx, timeouts, connection errors) and content failures (empty, unparseable or
            wrong-count replies).
        timeout_s: overall deadline of one judge call, all attempts and waits included (time
            spent waiting for the RPM/TPM limiter is not counted).
        request_timeout_s: limit of a single HTTP request.
        backoff_s: first backoff delay; doubles per retry, with jitter in [50%, 100%].
        backoff_max_s: cap of one backoff delay.
        hedge_after_s: when a request has not answered after this many seconds, send a copy
            of it beside it, and a second one when the copy has waited as long, and take
            whichever answers first (``None``: never). A reward batch waits for its slowest
            call, so a copy cuts the tail of a stuck request; each copy is a request and is
            counted as one. One copy per 8 concurrency slots may be in flight at once.
        hedge_quantile: send the copy after this quantile of the latencies the client has seen
            (its last 256 answers, once it has 20), so the delay follows the server: 0.95 sends
            copies for about one request in twenty. ``hedge_after_s`` is then the least delay,
            and the only one until 20 answers have come. ``None``: fixed ``hedge_after_s``.
    """

    max_retries: int = 4
    timeout_s: float = 120.0
    request_timeout_s: float = 60.0
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    hedge_after_s: float | None = None
    hedge_quantile: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.max_retries < 0:
            problems.append("judge max_retries: must be >= 0")
        for name in ("timeout_s", "request_timeout_s"):
            if not getattr(self, name) > 0:
                problems.append(f"judge {name}: must be > 0 seconds")
        if self.backoff_s < 0 or self.backoff_max_s < self.backoff_s:
            problems.append("judge backoff: need 0 <= backoff_s <= backoff_max_s")
        if self.hedge_after_s is not None and not self.hedge_after_s > 0:
            problems.append("judge hedge_after_s: must be > 0 seconds (or unset: no copies)")
        if self.hedge_quantile is not None and not 0.5 <= self.hedge_quantile < 1:
            problems.append("judge hedge_quantile: must lie in [0.5, 1) (or unset: fixed delay)")
        if problems:
            raise ConfigError(problems)

    @property
    def hedges(self) -> bool:
        """Whether a slow request gets copies (``humanlm.llm.hedge``): a delay is named."""
        return self.hedge_after_s is not None or self.hedge_quantile is not None


def backoff_delay(
    retry: int, policy: RetryPolicy, *, retry_after: float | None = None, rng: random.Random
) -> float:
    """Delay before retry number ``retry`` (0-based): exponential with jitter.

    A server's ``Retry-After`` is a lower bound: we never come back earlier than asked.
    """
    base = min(policy.backoff_max_s, policy.backoff_s * (2.0**retry))
    delay = base * rng.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Bucket:
    """A token bucket of ``per_minute`` units refilled continuously; the level may go negative
    (reservations), which is what makes later callers wait longer."""

    def __init__(self, per_minute: float, clock: Callable[[], float]):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()

    def take(self, amount: float) -> float:
        """Reserve ``amount`` units; return the seconds until the reservation is covered."""
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= min(amount, self.capacity)
        return max(0.0, -self.level / self.rate)


class RateLimiter:
    """Keeps requests and tokens under per-minute budgets (token buckets with reservations).

    Reserving happens without an ``await`` in between, so callers are served in arrival order and
    no lock (bound to one event loop) is needed. Our own rather than aiolimiter: that one meters
    requests only, and tokens must be charged before a reply and corrected after it. Token use is not known before the reply, so
    ``acquire`` charges an estimate and ``settle`` corrects it with the ``usage`` the server
    reported.

    Args:
        rpm: requests per minute, or ``None`` for no limit.
        tpm: tokens (input + output) per minute, or ``None`` for no limit.
    """

    def __init__(
        self,
        *,
        rpm: float | None = None,
        tpm: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if (rpm is not None and rpm <= 0) or (tpm is not None and tpm <= 0):
            raise ConfigError("judge rpm/tpm: must be positive (leave unset for no limit)")
        self._requests = _Bucket(rpm, clock) if rpm else None
        self._tokens = _Bucket(tpm, clock) if tpm else None

    async def acquire(self, tokens: int) -> float:
        """Wait until one request of about ``tokens`` tokens fits; return the seconds waited."""
        delay = self.reserve(tokens)
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    def reserve(self, tokens: int) -> float:
        """Reserve one request of about ``tokens`` tokens now; return the seconds until it fits
        (the caller waits them, or gives the reservation back with ``release``)."""
        return max(
            self._requests.take(1) if self._requests else 0.0,
            self._tokens.take(tokens) if self._tokens else 0.0,
        )

    def release(self, tokens: int) -> None:
        """Give back a reservation whose request was never sent."""
        if self._requests:
            self._requests.level += 1
        self.settle(tokens, 0)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once the real token count is known."""
        if self._tokens:
            self._tokens.level -= actual - min(estimated, self._tokens.capacity)
