"""``ChatClient``: the one retry loop every LLM call in humanlm goes through.

A call is a list of chat messages and, optionally, a ``parse`` function that accepts or refuses
the reply text. The client sends it under a concurrency limit and the RPM/TPM limiter, bounds it
by an overall deadline, and retries:

- **transport failures** (429, 5xx, timeouts, dropped connections) with jittered exponential
  backoff that never comes back before a server's ``Retry-After``;
- **content failures** (``parse`` refused the reply) at once, optionally sending the reply and a
  follow-up message that names the problem;
- never a refused key or an unknown model (``JudgeUnavailableError``, raised at once).

Retries of both kinds share one budget (``RetryPolicy.max_retries``); content retries may be
capped lower. Every attempt is counted in the ``Ledger``. After the budget or the deadline a call
ends with a reason, never an exception and never a made-up value.

We keep our own loop rather than tenacity: each attempt must land in the ledger, the limiter's
wait extends the deadline, and a backoff that would outlive the deadline ends the call at once.

Example:
    >>> client = ChatClient(backend, name="openai:m", retry=RetryPolicy())  # doctest: +SKIP
    >>> answer = await client.ask([{"role": "user", "content": "hi"}])  # doctest: +SKIP
    >>> answer.ok, answer.text  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import openai

from humanlm.errors import HumanlmError
from humanlm.llm.backends import (
    ChatBackend,
    Completion,
    TransportError,
    classify_error,
    read_usage,
)
from humanlm.llm.ledger import Ledger
from humanlm.llm.limits import RateLimiter, RetryPolicy, backoff_delay

__all__ = ["Answer", "ChatClient", "Parse", "ask_item", "run_bounded"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
# reply text -> (value, "ok") or (None, problem)
Parse = Callable[[str], "tuple[Any | None, str]"]

_CHARS_PER_TOKEN = 4
# Hedging by quantile: answers needed first, and how many recent ones count.
_HEDGE_MIN_ANSWERS = 20
_HEDGE_WINDOW = 256
_MIN_QUANTILE_DELAY_S = 0.01  # a copy sooner than this gains nothing over the request
# At most one copy in flight per this many concurrency slots (at least one).
_SLOTS_PER_COPY = 8
# Copies of one request at most (one each time the newest is the hedge delay old).
_COPIES_PER_CALL = 2


@dataclass(frozen=True)
class Answer:
    """The end of one call.

    Attributes:
        value: what ``parse`` made of the reply (the text itself without ``parse``), or ``None``.
        reason: ``ok``; a content problem (``parse``'s); ``timeout``; or a transport kind
            (``rate_limited``, ``server_error``, ``connection_error``, ``rejected``).
        raw: the text of the last reply seen, if any.
        calls: requests that got an answer or were sent.
        completion: the last completion (usage, finish reason, reasoning), if any.
        content_failure: whether the call ended on refused replies rather than transport.
        error: the transport failure the call ended on, if it did (for a refused request, its
            ``detail`` holds the server's message and ``param`` the field it named).
    """

    value: Any
    reason: str
    raw: str | None = None
    calls: int = 0
    completion: Completion | None = None
    content_failure: bool = False
    error: TransportError | None = None

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def _tokens(result: Any) -> tuple[int, int, bool]:
    """Token usage of a ``Completion`` or of a raw SDK response (0 when not reported), and
    whether the server's counts were valid (``read_usage``; invalid ones count as 0)."""
    if isinstance(result, Completion):
        return result.input_tokens, result.output_tokens, result.usage_valid
    counts = read_usage(getattr(result, "usage", None))
    return (0, 0, False) if counts is None else (*counts, True)


def _accept(text: str) -> tuple[str, str]:
    return text, "ok"


@dataclass
class _Call:
    messages: list[dict[str, str]]
    parse: Parse
    follow_up: Callable[[str], str] | None
    content_retries: int | None
    params: dict[str, Any] | None
    content_label: str | None = None
    prompt: str | None = None  # text API: sent as is instead of ``messages``


class ChatClient:
    """One chat model, called with bounded, retried, counted requests.

    Args:
        backend: the chat API (``humanlm.llm.backends``).
        name: the spec shown in logs and results (no credentials).
        retry: attempts, backoff and deadlines.
        limiter: requests/tokens per minute (``None``: unlimited).
        ledger: where calls, tokens and failures are counted.
        concurrency: calls in flight at once (``None``: unbounded; the caller bounds them).
        output_guess: tokens a reply is assumed to take before the server reports usage.
        seed: seed of the backoff jitter.
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        name: str,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        ledger: Ledger | None = None,
        concurrency: int | None = None,
        output_guess: int = 400,
        seed: int | None = None,
    ):
        self.backend = backend
        self.name = name
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter()
        self.ledger = ledger if ledger is not None else Ledger(model=backend.model)
        self.concurrency = concurrency
        self.output_guess = output_guess
        self._rng = random.Random(seed)
        self._copies = 0  # copies in flight (``_hedged``)
        self._hedge_at: tuple[int, float] = (-1, 0.0)  # (answers // 16, quantile) last computed
        self._slots: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"ChatClient(name={self.name!r}, concurrency={self.concurrency})"

    def _slot(self) -> asyncio.Semaphore | None:
        # A semaphore belongs to one event loop; TRL and tests may use several in turn.
        if self.concurrency is None:
            return None
        loop = asyncio.get_running_loop()
        if loop not in self._slots:
            self._slots[loop] = asyncio.Semaphore(self.concurrency)
        return self._slots[loop]

    async def ask(
        self,
        messages: Sequence[dict[str, str]],
        *,
        parse: Parse | None = None,
        follow_up: Callable[[str], str] | None = None,
        content_retries: int | None = None,
        params: dict[str, Any] | None = None,
        content_label: str | None = None,
    ) -> Answer:
        """Ask until a reply is accepted, the retries are spent or the deadline passes.

        Args:
            messages: the chat messages.
            parse: reply text -> ``(value, "ok")`` or ``(None, problem)`` (default: accept any).
            follow_up: problem -> a user message asking again; the refused reply and this message
                are appended to the first message (default: resend the same messages).
            content_retries: re-asks after a refused reply (default and cap: the retry budget).
            params: request fields for this call only (``temperature``, ``stop`` ...).
            content_label: the ledger's name for a refused reply (default: the problem itself).

        Returns:
            An ``Answer``; ``answer.ok`` tells whether ``answer.value`` holds a parsed reply.

        Raises:
            JudgeUnavailableError: the server refused the key or does not know the model.
        """
        call = _Call(list(messages), parse or _accept, follow_up, content_retries, params)
        call.content_label = content_label
        slot = self._slot()
        if slot is None:
            return await self._attempts(call)
        async with slot:  # the deadline starts once the request may go out
            return await self._attempts(call)

    async def ask_text(
        self,
        prompt: str,
        *,
        parse: Parse | None = None,
        content_retries: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> Answer:
        """Like ``ask``, through the text API: ``prompt`` is sent verbatim (``/v1/completions``).

        Same retries, deadline, limiter and ledger as ``ask``; a refused reply is asked again
        unchanged. The backend must have ``complete_text`` (``OpenAIBackend`` has). Every
        generation field goes in ``params``; each choice is in ``answer.completion.choices``::

            answer = await client.ask_text(prompt, params={
                "max_tokens": 512, "temperature": 1.0, "top_p": 1.0, "stop": ["</r>"],
                "seed": 0, "n": 2, "extra_body": {"vllm_xargs": {...}}})
            [(c.text, c.finish_reason) for c in answer.completion.choices]
        """
        if not hasattr(self.backend, "complete_text"):
            raise HumanlmError(f"{self.name}: this backend has no text-completion API")
        call = _Call(
            [{"role": "user", "content": prompt}], parse or _accept, None, content_retries, params
        )
        call.prompt = prompt
        slot = self._slot()
        if slot is None:
            return await self._attempts(call)
        async with slot:
            return await self._attempts(call)

    async def _attempts(self, call: _Call) -> Answer:
        messages, parse, follow_up, params = call.messages, call.parse, call.follow_up, call.params
        budget = self.retry.max_retries
        content_cap = budget if call.content_retries is None else min(call.content_retries, budget)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry.timeout_s
        reason, raw, calls, content_failures = "timeout", None, 0, 0
        last: Completion | None = None
        failed: TransportError | None = None
        on_content = False
        first = messages[0] if messages else None
        for attempt in range(budget + 1):
            estimate = sum(len(m["content"]) for m in messages) // _CHARS_PER_TOKEN
            estimate += self.output_guess
            deadline += await self.limiter.acquire(estimate)
            remaining = deadline - loop.time()
            if remaining <= 0:
                reason, failed = "timeout", None
                break
            calls += 1
            current = messages

            def send(timeout_s: float, current: list[dict[str, str]] = current) -> Awaitable[Any]:
                if call.prompt is not None:
                    return self.backend.complete_text(  # type: ignore[attr-defined]
                        call.prompt, timeout_s=timeout_s, params=params
                    )
                if params:
                    return self.backend.complete(current, timeout_s=timeout_s, params=params)
                return self.backend.complete(current, timeout_s=timeout_s)

            completion, error = await self._send(send, estimate, remaining)
            if completion is not None:
                last, raw = completion, completion.text
                value, problem = parse(completion.text)
                if problem == "ok":
                    return Answer(value, "ok", raw, calls, completion)
                reason, on_content = problem, True
                content_failures += 1
                self.ledger.record_attempt_failure(call.content_label or problem, sent=False)
                logger.debug("%s: unusable reply (%s), attempt %d", self.name, problem, calls)
                if content_failures > content_cap:
                    return Answer(None, reason, raw, calls, last, content_failure=True)
                if follow_up is not None and first is not None:
                    messages = [
                        first,
                        {"role": "assistant", "content": completion.text},
                        {"role": "user", "content": follow_up(problem)},
                    ]
                continue  # a content failure is retried at once: the server is fine
            assert error is not None
            reason, on_content, failed = error.kind, False, error
            if not error.is_retryable or attempt == budget:
                break
            delay = backoff_delay(attempt, self.retry, retry_after=error.retry_after, rng=self._rng)
            if loop.time() + delay >= deadline:
                break  # waiting would outlive the deadline: give up now rather than hang
            logger.debug("%s: %s, retrying in %.2fs", self.name, reason, delay)
            await asyncio.sleep(delay)
        ended_on = None if on_content else failed
        return Answer(None, reason, raw, calls, last, content_failure=on_content, error=ended_on)

    async def call(self, send: Callable[[float], Awaitable[T]], *, estimate: int = 0) -> Answer:
        """One request of any shape (a completions call, a raw SDK call) under the same loop.

        Transport failures are retried as in ``ask``; there is no content check.

        Args:
            send: ``timeout_s`` -> the awaitable of one request (it may raise the SDK's errors).
            estimate: prompt tokens, for the TPM limiter.

        Returns:
            An ``Answer`` whose ``value`` is what ``send`` returned.
        """
        slot = self._slot()
        if slot is None:
            return await self._call(send, estimate)
        async with slot:
            return await self._call(send, estimate)

    async def _call(self, send: Callable[[float], Awaitable[Any]], estimate: int) -> Answer:
        budget = self.retry.max_retries
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry.timeout_s
        reason, calls, failed = "timeout", 0, None
        for attempt in range(budget + 1):
            deadline += await self.limiter.acquire(estimate + self.output_guess)
            remaining = deadline - loop.time()
            if remaining <= 0:
                reason, failed = "timeout", None
                break
            calls += 1
            value, error = await self._send(send, estimate + self.output_guess, remaining)
            if error is None:
                return Answer(value, "ok", None, calls, None)
            reason, failed = error.kind, error
            if not error.is_retryable or attempt == budget:
                break
            delay = backoff_delay(attempt, self.retry, retry_after=error.retry_after, rng=self._rng)
            if loop.time() + delay >= deadline:
                break
            await asyncio.sleep(delay)
        return Answer(None, reason, None, calls, None, error=failed)

    async def _send(
        self, send: Callable[[float], Awaitable[Any]], estimate: int, remaining: float
    ) -> tuple[Any, TransportError | None]:
        """One request bounded by ``remaining`` seconds; every outcome is counted.

        With ``retry.hedge_after_s`` or ``hedge_quantile``, a request still unanswered after
        that delay gets copies beside it (``_hedged``); the first to answer wins and the others
        are cancelled.
        """
        timeout_s = min(self.retry.request_timeout_s, remaining)
        hedge_at = self._hedge_delay()
        if hedge_at is None or hedge_at >= timeout_s:
            return await self._one(send, timeout_s, remaining, estimate)
        return await self._hedged(send, timeout_s, remaining, hedge_at, estimate)

    def _hedge_delay(self) -> float | None:
        """When a copy goes out: ``hedge_after_s``, or the ``hedge_quantile`` of the latest
        latencies (never below ``hedge_after_s``) once enough answers have come."""
        fixed, quantile = self.retry.hedge_after_s, self.retry.hedge_quantile
        seen = self.ledger.latencies
        if quantile is None or len(seen) < _HEDGE_MIN_ANSWERS:
            return fixed
        if self._hedge_at[0] != len(seen) // 16:  # sorted again every 16 answers, not each call
            window = sorted(seen[-_HEDGE_WINDOW:])
            at = window[math.ceil(quantile * len(window)) - 1]  # the nearest-rank quantile
            self._hedge_at = (len(seen) // 16, at)
        return max(fixed or 0.0, self._hedge_at[1], _MIN_QUANTILE_DELAY_S)

    def _reserve_copy(self) -> bool:
        """Take a place for one copy, if there is one (``_release_copy`` gives it back).

        When the server slows down for everyone, every request passes the quantile at once;
        copies then would only add load, so only a few may be in flight."""
        if self.concurrency is not None and self._copies >= max(
            1, self.concurrency // _SLOTS_PER_COPY
        ):
            return False
        self._copies += 1
        return True

    def _release_copy(self, *_: object) -> None:
        self._copies -= 1

    async def _hedged(
        self,
        send: Callable[[float], Awaitable[Any]],
        timeout_s: float,
        remaining: float,
        hedge_at: float,
        estimate: int,
    ) -> tuple[Any, TransportError | None]:
        """The request, and a copy each time the newest one is ``hedge_at`` old with no
        answer yet (``_COPIES_PER_CALL`` at most, as gRPC's hedging policy does)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + remaining
        first = asyncio.ensure_future(self._one(send, timeout_s, remaining, estimate))
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
                copy = await self._copy(send, sent_at, timeout_s, end, estimate)
                if copy is None:
                    break
                logger.debug("%s: no answer after %.2fs, a copy", self.name, hedge_at)
                sent_at[copy] = loop.time()
                copies += 1
            return await self._first_answer(sent_at, hedge_at)
        finally:
            for task in sent_at:
                if task.cancel():  # the twins that lost, or all when the caller gave up
                    task.add_done_callback(self._count_given_up)
                elif not task.cancelled():
                    task.exception()  # finished in the same round: counted by ``_one`` already

    def _count_given_up(self, task: asyncio.Future[Any]) -> None:
        # A request given up was sent, so it is a call. One that still ended on its own (its
        # timeout can fire in the same round as the cancel) was counted by ``_one``; its error,
        # if any, is read here so that it is not reported as never retrieved.
        if task.cancelled() or task.exception() is not None:
            self.ledger.record_cancelled()

    async def _copy(
        self,
        send: Callable[[float], Awaitable[Any]],
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
            copy = asyncio.ensure_future(self._one(send, min(timeout_s, left), left, estimate))
            copy.add_done_callback(self._release_copy)
            sent = True
            return copy
        finally:
            if not sent:  # no copy after all, or the caller gave up while it waited
                self.limiter.release(estimate)
                self._release_copy()

    @staticmethod
    async def _first_answer(
        requests: Iterable[asyncio.Future[Any]], patience: float
    ) -> tuple[Any, TransportError | None]:
        """The first success among ``requests`` (a request and its copies).

        After a failure the others are waited for ``patience`` longer, then given up as stuck,
        so that the retry loop is served at once. A refusal for rate (429) gives up nothing:
        it says the server is busy, not that its twins are stuck, and a retry would only add
        load. When all have failed or been given up, the error that asks for the longest wait
        is returned (a ``Retry-After`` must hold for the retry)."""
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

    async def _one(
        self, send: Callable[[float], Awaitable[Any]], timeout_s: float, bound: float, estimate: int
    ) -> tuple[Any, TransportError | None]:
        """Send once and count the outcome; a failure comes back as a ``TransportError``."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            result = await asyncio.wait_for(send(timeout_s), timeout=bound)
        except (asyncio.TimeoutError, TimeoutError):
            self.ledger.record_attempt_failure("timeout")
            return None, TransportError("timeout")
        except TransportError as err:
            self.ledger.record_attempt_failure(err.kind, detail=err.detail)
            return None, err
        except HumanlmError:
            raise  # bad credentials or endpoint: retrying cannot fix configuration
        except openai.OpenAIError as exc:  # a raw SDK call (``call``): classify it here
            classified = classify_error(
                exc, where=self.name, role=getattr(self.backend, "role", "model")
            )
            if not isinstance(classified, TransportError):
                raise classified from None
            self.ledger.record_attempt_failure(classified.kind, detail=classified.detail)
            return None, classified
        except Exception:  # the call boundary: anything else becomes a recorded failure
            logger.warning("%s: unexpected error in a request", self.name, exc_info=True)
            self.ledger.record_attempt_failure("unexpected_error")
            return None, TransportError("server_error")
        input_tokens, output_tokens, valid = _tokens(result)
        used = input_tokens + output_tokens
        self.limiter.settle(estimate, used or estimate)
        self.ledger.record_call(
            latency_s=loop.time() - started,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            usage_valid=valid,
        )
        return result, None

    async def aclose(self) -> None:
        """Release the backend's connections for the running event loop."""
        await self.backend.aclose()


async def run_bounded(
    items: Sequence[T], handle: Callable[[T], Awaitable[None]], *, concurrency: int
) -> None:
    """Await ``handle(item)`` for every item, in order, with at most ``concurrency`` in flight.

    The first exception cancels the other workers and propagates.
    """
    queue: asyncio.Queue[T] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await handle(queue.get_nowait())

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(items)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        # Collect every worker's end, so a second failure is not reported later as a "Task
        # exception was never retrieved".
        await asyncio.gather(*workers, return_exceptions=True)


async def ask_item(
    client: ChatClient,
    prompt: str,
    *,
    parse: Parse,
    follow_up: Callable[[str], str],
    content_retries: int,
) -> tuple[Any | None, str]:
    """One item of a per-item job (a persona, a trace): ``(value, "ok")`` or ``(None, reason)``.

    A refused reply is sent back with ``follow_up(problem)``; the reason of a call that ended on
    refused replies is ``invalid_reply (<problem>)``.
    """
    answer = await client.ask(
        [{"role": "user", "content": prompt}],
        parse=parse,
        follow_up=follow_up,
        content_retries=content_retries,
        content_label="invalid_reply",
    )
    if answer.ok:
        return answer.value, "ok"
    return None, f"invalid_reply ({answer.reason})" if answer.content_failure else answer.reason
