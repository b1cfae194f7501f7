"""The one place simulate and serve reach the LLM client layer (OpenAI-compatible calls).

Retries, backoff and error classification come from the shared client code; this module only
imports it (``llm_parts``) and runs one call under its retry policy (``call_with_retries``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar

from humanlm.errors import HumanlmError

__all__ = ["CallFailure", "call_with_retries", "llm_parts"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def llm_parts() -> SimpleNamespace:
    """The shared client parts: ``OpenAIBackend``, ``TransportError``, ``classify_error``,
    ``RetryPolicy``, ``backoff_delay``."""
    from humanlm.judge.backends import OpenAIBackend, TransportError, classify_error
    from humanlm.judge.limits import RetryPolicy, backoff_delay

    return SimpleNamespace(
        OpenAIBackend=OpenAIBackend,
        TransportError=TransportError,
        classify_error=classify_error,
        RetryPolicy=RetryPolicy,
        backoff_delay=backoff_delay,
    )


@dataclass(frozen=True)
class CallFailure:
    """A call that got no answer after its retries.

    Attributes:
        reason: ``timeout``, ``transport_error`` (429/5xx), ``connection_error``, ``rejected``
            (a 4xx other than auth) or ``refused`` (bad credentials, unknown model or URL).
        attempts: requests made.
    """

    reason: str
    attempts: int


async def call_with_retries(
    call: Callable[[float], Awaitable[T]],
    *,
    policy: Any,
    where: str,
    rng: random.Random,
) -> T | CallFailure:
    """Run ``call(timeout_s)`` until it answers, the retries are spent or the deadline passes.

    ``call`` raises the SDK's exceptions (classified by the shared client code) or a backend's
    ``TransportError``; bad credentials or an unknown model end the tries at once (``refused``).
    Credentials and server error bodies never reach the log or the failure.
    """
    parts = llm_parts()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.timeout_s
    reason, attempts = "timeout", 0
    for attempt in range(policy.max_retries + 1):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        attempts += 1
        try:
            timeout = min(policy.request_timeout_s, remaining)
            return await asyncio.wait_for(call(timeout), timeout=remaining)
        except (asyncio.TimeoutError, TimeoutError):
            error: Any = parts.TransportError("timeout")
        except HumanlmError:
            return CallFailure("refused", attempts)
        except parts.TransportError as exc:  # already classified by a backend
            error = exc
        except Exception as exc:  # SDK errors, a 2xx whose body is not JSON
            error = parts.classify_error(exc, where=where)
            if not isinstance(error, parts.TransportError):
                return CallFailure("refused", attempts)
        reason = "transport_error" if error.kind in ("server_error", "rate_limited") else error.kind
        if not error.is_retryable or attempt == policy.max_retries:
            break
        delay = parts.backoff_delay(attempt, policy, retry_after=error.retry_after, rng=rng)
        if loop.time() + delay >= deadline:
            break
        logger.debug("%s: %s, retrying in %.2fs", where, error.kind, delay)
        await asyncio.sleep(delay)
    logger.warning("%s: no answer after %d attempt(s) (%s)", where, attempts, reason)
    return CallFailure(reason, attempts)
