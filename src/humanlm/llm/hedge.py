"""Hedged requests: a copy beside a request that is slow to answer; the first answer wins.

A reward batch waits for its slowest judge call, so one stuck request holds up a training step.
``Hedger`` sends a copy of a request still unanswered after a delay (``RetryPolicy.hedge_after_s``,
or a quantile of the latencies seen, ``hedge_quantile``), a second one when the copy has waited
as long, and cancels the others once one answers, as gRPC's hedging policy does. Each copy is a
request and is counted as one in the ``Ledger``; the ``ChatClient`` turns hedging on when the
policy names a delay (``RetryPolicy.hedges``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from humanlm.errors import HumanlmError
from humanlm.llm.failures import TransportError
from humanlm.llm.ledger import Ledger
from humanlm.llm.limits import RateLimiter, RetryPolicy
from humanlm.llm.replies import Completion

__all__ = ["Hedger", "Outcome", "SendOnce"]

logger = logging.getLogger(__name__)

# What one counted request gives back: its reply, or the failure it ended on.
Outcome = tuple[Completion | None, TransportError | None]
# (timeout_s of the HTTP request, bound of the whole attempt) -> the outcome of one request.
SendOnce = Callable[[float, float], Awaitable[Outcome]]

# Hedging by quantile: answers needed first, and how many recent ones count.
_MIN_ANSWERS = 20
_WINDOW = 256
_MIN_QUANTILE_DELAY_S = 0.01  # a copy sooner than this gains nothing over the request
# At most one copy in flight per this many concurrency slots (at least one).
_SLOTS_PER_COPY = 8
# Copies of one request at most (one each time the newest is the hedge delay old).
_COPIES_PER_CALL = 2


class Hedger:
    """Sends a request with copies beside it while it is slow, for one ``ChatClient``.

    Args:
        retry: the policy naming the delay (``hedge_after_s``, ``hedge_quantile``).
        ledger: the client's ledger: its latencies set the quantile; copies are counted there.
        limiter: the client's limiter: a copy waits for it like any request.
        concurrency: the client's concurrency bound (``None``: unbounded); it caps the copies
            in flight.
        name: the model's name in log lines.
    """

    def __init__(
        self,
        retry: RetryPolicy,
        *,
        ledger: Ledger,
        limiter: RateLimiter,
        concurrency: int | None,
        name: str,
    ):
        self.retry, self.ledger, self.limiter = retry, ledger, limiter
        self.concurrency, self.name = concurrency, name
        self.copies_in_flight = 0
        self._quantile_at: tuple[int, float] = (-1, 0.0)  # (answers // 16, quantile) last seen

    def delay(self) -> float | None:
        """When a copy goes out: ``hedge_after_s``, or the ``hedge_quantile`` of the latest
        latencies (never below ``hedge_after_s``) once enough answers have come."""
        fixed, quantile = self.retry.hedge_after_s, self.retry.hedge_quantile
        seen = self.ledger.latencies
        if quantile is None or len(seen) < _MIN_ANSWERS:
            return fixed
        if self._quantile_at[0] != len(seen) // 16:  # sorted again every 16 answers, not each call
            window = sorted(seen[-_WINDOW:])
            at = window[math.ceil(quantile * len(window)) - 1]  # the nearest-rank quantile
            self._quantile_at = (len(seen) // 16, at)
        return max(fixed or 0.0, self._quantile_at[1], _MIN_QUANTILE_DELAY_S)

    async def send(
        self, one: SendOnce, *, timeout_s: float, remaining: float, estimate: int
    ) -> Outcome:
        """One request (``one``), with copies if it is slower than ``delay()``.

        Args:
            one: sends and counts one request.
            timeout_s: limit of each HTTP request.
            remaining: seconds left to the call's deadline.
            estimate: tokens one request is assumed to take, for the limiter.
        """
        hedge_at = self.delay()
        if hedge_at is None or hedge_at >= timeout_s:
            return await one(timeout_s, remaining)
        loop = asyncio.get_running_loop()
        end = loop.time() + remaining
        first = asyncio.ensure_future(one(timeout_s, remaining))
        sent_at = {first: loop.time()}
        try:
            copies, checked = 0, 0.0
            while copies < _COPIES_PER_CALL:  # ends at the latest when the request times out
                wait = max(*sent_at.values(), checked) + hedge_at - loop.time()
                done, _ = await asyncio.wait(
                    list(sent_at), timeout=max(0.0, wait), return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    break
                checked = loop.time()
                if not self._reserve_copy():
                    continue  # too many copies in flight: look again a delay later
                copy = await self._copy(one, sent_at, timeout_s, end, estimate)
                if copy is None:
                    break
                logger.debug("%s: no answer after %.2fs, a copy", self.name, hedge_at)
                sent_at[copy] = loop.time()
                copies += 1
            return await _first_answer(sent_at, hedge_at)
        finally:
            for task in sent_at:
                if task.cancel():  # the slower requests, or all when the caller gave up
                    task.add_done_callback(self._count_given_up)
                elif not task.cancelled():
                    task.exception()  # finished in the same round: counted by ``one`` already

    def _reserve_copy(self) -> bool:
        """Take a place for one copy, if there is one (``_release_copy`` gives it back).

        When the server slows down for everyone, every request passes the quantile at once;
        copies then would only add load, so only a few may be in flight."""
        if self.concurrency is not None and self.copies_in_flight >= max(
            1, self.concurrency // _SLOTS_PER_COPY
        ):
            return False
        self.copies_in_flight += 1
        return True

    def _release_copy(self, *_: object) -> None:
        self.copies_in_flight -= 1

    def _count_given_up(self, task: asyncio.Future[Any]) -> None:
        # A request given up was sent, so it is a call. One that still ended on its own (its
        # timeout can fire in the same round as the cancel) was counted by ``one``; its error,
        # if any, is read here so that it is not reported as never retrieved.
        if task.cancelled() or task.exception() is not None:
            self.ledger.record_cancelled()

    async def _copy(
        self,
        one: SendOnce,
        sent_at: dict[asyncio.Future[Any], float],
        timeout_s: float,
        end: float,
        estimate: int,
    ) -> asyncio.Future[Any] | None:
        """Send one copy in the place ``_reserve_copy`` took, once the limiter lets it go;
        ``None`` (place and limiter reservation given back) when a request answers first."""
        loop = asyncio.get_running_loop()
        sent = False
        try:
            # The requests may answer while the copy waits for the limiter.
            delay = self.limiter.reserve(estimate)
            if delay > 0:
                await asyncio.wait(list(sent_at), timeout=delay)
            left = end - loop.time()
            if any(task.done() for task in sent_at) or left <= 0:
                return None
            self.ledger.record_hedge()
            copy = asyncio.ensure_future(one(min(timeout_s, left), left))
            copy.add_done_callback(self._release_copy)
            sent = True
            return copy
        finally:
            if not sent:  # no copy after all, or the caller gave up while it waited
                self.limiter.release(estimate)
                self._release_copy()


async def _first_answer(requests: Iterable[asyncio.Future[Any]], patience: float) -> Outcome:
    """The first success among ``requests`` (a request and its copies).

    After a failure the others are waited for ``patience`` longer, then given up as stuck, so
    that the retry loop is served at once. A refusal for rate (429) gives up nothing: it says
    the server is busy, not that the copies are stuck, and a retry would only add load. When all
    have failed or been given up, the error that asks for the longest wait is returned (a
    ``Retry-After`` must hold for the retry)."""
    loop = asyncio.get_running_loop()
    pending, errors = set(requests), []
    give_up_at: float | None = None
    while pending:
        timeout = None if give_up_at is None else max(0.0, give_up_at - loop.time())
        done, pending = await asyncio.wait(
            pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            break  # the rest are stuck: the caller cancels them
        outcomes, raised = [], None
        for task in done:  # every finished task is read, so none is left unretrieved
            try:
                outcomes.append(task.result())
            except HumanlmError as err:  # bad credentials or endpoint
                raised = raised or err
        for result, error in outcomes:
            if error is None:
                return result, None
            errors.append(error)
            if error.kind != "rate_limited":
                give_up_at = loop.time() + patience
        if raised is not None:
            raise raised
    return None, max(errors, key=lambda e: e.retry_after or 0.0)
