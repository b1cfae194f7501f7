"""``ChatClient``: the one retry loop every LLM call in humanlm goes through.

A call is a list of chat messages (``ask``) or a prompt for the text API (``ask_text``) and,
optionally, a ``parse`` function that accepts or refuses the reply text. The client sends it
under a concurrency limit and the RPM/TPM limiter, bounds it by an overall deadline, and
retries:

- **transport failures** (429, 408, 409, 5xx, timeouts, dropped connections) with jittered
  exponential backoff that never comes back before a server's ``Retry-After``;
- **content failures** (``parse`` refused the reply) at once, optionally sending the reply and a
  follow-up message that names the problem (the reply cut to ``ECHO_MAX_CHARS`` and the problem
  to ``PROBLEM_MAX_CHARS``, so an oversized reply never makes an oversized re-ask);
- never a refused request (400, 422: the same request cannot succeed), a refused key or an
  unknown model (``JudgeUnavailableError``, raised at once).

Retries of both kinds share one budget (``RetryPolicy.max_retries``); content retries may be
capped lower. Every attempt is counted in the ``Ledger``. After the budget or the deadline a call
ends with a reason, never an exception and never a made-up value. With a hedge delay in the
policy, a slow request gets copies beside it (``humanlm.llm.hedge``).

We keep our own loop rather than tenacity: each attempt must land in the ledger, the limiter's
wait extends the deadline, and a backoff that would outlive the deadline ends the call at once.

Example:
    >>> client = ChatClient(backend, name="openai:m", retry=RetryPolicy())  # doctest: +SKIP
    >>> answer = await client.ask([{"role": "user", "content": "hi"}])  # doctest: +SKIP
    >>> answer.ok, answer.value, answer.completion.choices  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from humanlm.errors import HumanlmError
from humanlm.llm.backends import ChatBackend
from humanlm.llm.failures import TransportError
from humanlm.llm.hedge import Hedger, Outcome
from humanlm.llm.ledger import Ledger
from humanlm.llm.limits import RateLimiter, RetryPolicy, backoff_delay
from humanlm.llm.replies import Completion

__all__ = [
    "ECHO_MAX_CHARS",
    "PROBLEM_MAX_CHARS",
    "Answer",
    "ChatClient",
    "Parse",
    "ask_item",
    "run_bounded",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
# reply text -> (value, "ok") or (None, problem)
Parse = Callable[[str], "tuple[Any | None, str]"]

_CHARS_PER_TOKEN = 4
# How much of a refused reply a re-ask sends back: enough for the model to see what it wrote.
ECHO_MAX_CHARS = 4000
# How much of the problem a follow-up names (and a failed item's reason keeps).
PROBLEM_MAX_CHARS = 300


@dataclass(frozen=True)
class Answer:
    """The end of one call.

    Attributes:
        value: what ``parse`` made of the reply (the text itself without ``parse``), or ``None``.
        reason: ``ok``; a content problem (``parse``'s); ``timeout``; or a transport kind
            (``rate_limited``, ``server_error``, ``connection_error``, ``rejected``).
        raw: the text of the last reply seen, if any.
        calls: requests that got an answer or were sent.
        completion: the last completion (usage, finish reason, reasoning, every choice), if any.
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


def _accept(text: str) -> tuple[str, str]:
    return text, "ok"


def _cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and how many more were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}[... {len(text) - limit:,} more characters cut]"


def _prompt_tokens(messages: Sequence[dict[str, str]]) -> int:
    return sum(len(m["content"]) for m in messages) // _CHARS_PER_TOKEN


# (messages of this attempt, timeout_s) -> the reply of one request
_Send = Callable[[list[dict[str, str]], float], Awaitable[Completion]]


@dataclass
class _Call:
    """What one call sends and what it accepts."""

    send: _Send
    messages: list[dict[str, str]]
    parse: Parse  # reply text -> (value, "ok") or (None, problem)
    follow_up: Callable[[str], str] | None = None
    content_retries: int | None = None
    content_label: str | None = None


class ChatClient:
    """One chat model, called with bounded, retried, counted requests.

    Args:
        backend: the chat API (``humanlm.llm.backends``).
        name: the spec shown in logs and results (no credentials).
        retry: attempts, backoff, deadlines and hedging (``RetryPolicy.hedges``).
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
        self.hedger = (
            Hedger(
                self.retry,
                ledger=self.ledger,
                limiter=self.limiter,
                concurrency=concurrency,
                name=name,
            )
            if self.retry.hedges
            else None
        )
        self._rng = random.Random(seed)
        self._slots: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"ChatClient(name={self.name!r}, concurrency={self.concurrency})"

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
            follow_up: problem -> a user message asking again; the refused reply (its first
                ``ECHO_MAX_CHARS`` characters) and this message are appended to the first
                message (default: resend the same messages).
            content_retries: re-asks after a refused reply (default and cap: the retry budget).
            params: request fields for this call only (``temperature``, ``stop``, ``n`` ...).
            content_label: the ledger's name for a refused reply (default: the problem itself).

        Returns:
            An ``Answer``; ``answer.ok`` tells whether ``answer.value`` holds a parsed reply.

        Raises:
            JudgeUnavailableError: the server refused the key or does not know the model.
        """

        def send(current: list[dict[str, str]], timeout_s: float) -> Awaitable[Completion]:
            return self.backend.complete(current, timeout_s=timeout_s, params=params)

        call = _Call(
            send, list(messages), parse or _accept, follow_up, content_retries, content_label
        )
        return await self._bounded(call)

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
        complete_text = getattr(self.backend, "complete_text", None)
        if complete_text is None:
            raise HumanlmError(f"{self.name}: this backend has no text-completion API")

        def send(_: list[dict[str, str]], timeout_s: float) -> Awaitable[Completion]:
            return complete_text(prompt, timeout_s=timeout_s, params=params)

        messages = [{"role": "user", "content": prompt}]  # for the token estimate only
        return await self._bounded(_Call(send, messages, parse or _accept, None, content_retries))

    async def _bounded(self, call: _Call) -> Answer:
        slot = self._slot()
        if slot is None:
            return await self._attempts(call)
        async with slot:  # the deadline starts once the request may go out
            return await self._attempts(call)

    def _slot(self) -> asyncio.Semaphore | None:
        # A semaphore belongs to one event loop; TRL and tests may use several in turn.
        if self.concurrency is None:
            return None
        loop = asyncio.get_running_loop()
        if loop not in self._slots:
            self._slots[loop] = asyncio.Semaphore(self.concurrency)
        return self._slots[loop]

    async def _attempts(self, call: _Call) -> Answer:
        """The retry loop every request goes through."""
        budget = self.retry.max_retries
        content_cap = budget if call.content_retries is None else min(call.content_retries, budget)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry.timeout_s
        messages = call.messages
        reason, raw, calls, content_failures = "timeout", None, 0, 0
        last: Completion | None = None
        failed: TransportError | None = None
        on_content = False
        for attempt in range(budget + 1):
            estimate = _prompt_tokens(messages) + self.output_guess
            deadline += await self.limiter.acquire(estimate)  # the limiter's wait is not counted
            remaining = deadline - loop.time()
            if remaining <= 0:
                reason, failed = "timeout", None
                break
            calls += 1
            send = functools.partial(call.send, messages)  # timeout_s -> one request
            result, error = await self._send(send, estimate, remaining)
            if result is not None:
                last, raw = result, result.text
                value, problem = call.parse(result.text)
                if problem == "ok":
                    return Answer(value, "ok", raw, calls, result)
                reason, on_content = problem, True
                content_failures += 1
                self.ledger.record_attempt_failure(call.content_label or problem, sent=False)
                logger.debug("%s: unusable reply (%s), attempt %d", self.name, problem, calls)
                if content_failures > content_cap:
                    return Answer(None, reason, raw, calls, last, content_failure=True)
                if call.follow_up is not None and messages:
                    messages = [
                        call.messages[0],
                        {"role": "assistant", "content": _cut(result.text, ECHO_MAX_CHARS)},
                        {
                            "role": "user",
                            "content": call.follow_up(_cut(problem, PROBLEM_MAX_CHARS)),
                        },
                    ]
                continue  # a content failure is retried at once: the server is fine
            assert error is not None
            reason, on_content, failed = error.kind, False, error
            if not error.is_retryable or attempt == budget:
                break  # a refused request (400) is never sent again
            delay = backoff_delay(attempt, self.retry, retry_after=error.retry_after, rng=self._rng)
            if loop.time() + delay >= deadline:
                break  # waiting would outlive the deadline: give up now rather than hang
            logger.debug("%s: %s, retrying in %.2fs", self.name, reason, delay)
            await asyncio.sleep(delay)
        ended_on = None if on_content else failed
        return Answer(None, reason, raw, calls, last, content_failure=on_content, error=ended_on)

    async def _send(
        self, send: Callable[[float], Awaitable[Completion]], estimate: int, remaining: float
    ) -> Outcome:
        """One attempt bounded by ``remaining`` seconds, with copies when hedging is on."""
        timeout_s = min(self.retry.request_timeout_s, remaining)

        def one(timeout_s: float, bound: float) -> Awaitable[Outcome]:
            return self._one(send, timeout_s, bound, estimate)

        if self.hedger is None:
            return await one(timeout_s, remaining)
        return await self.hedger.send(
            one, timeout_s=timeout_s, remaining=remaining, estimate=estimate
        )

    async def _one(
        self,
        send: Callable[[float], Awaitable[Completion]],
        timeout_s: float,
        bound: float,
        estimate: int,
    ) -> Outcome:
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
        except Exception:  # the call boundary: anything else becomes a recorded failure
            logger.warning("%s: unexpected error in a request", self.name, exc_info=True)
            self.ledger.record_attempt_failure("unexpected_error")
            return None, TransportError("server_error")
        used = result.input_tokens + result.output_tokens
        self.limiter.settle(estimate, used or estimate)
        self.ledger.record_call(
            latency_s=loop.time() - started,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            usage_valid=result.usage_valid,
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
    if answer.content_failure:
        return None, f"invalid_reply ({_cut(answer.reason, PROBLEM_MAX_CHARS)})"
    return None, answer.reason
