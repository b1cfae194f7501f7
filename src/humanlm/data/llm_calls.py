"""LLM calls shared by the data commands that ask a chat model once per item (personas, traces).

- `make_chat_backend`: a chat backend from ``openai:MODEL[@URL]`` or ``litellm:PROVIDER/MODEL``.
- `ChatAsker`: one item's call, with transport retries (429, 5xx, timeouts, dropped connections)
  under a `RetryPolicy` and content retries that send the reply's problem back to the model.
- `run_bounded`: run one coroutine per item, at most ``concurrency`` at once.
- `load_log` / `append_log`: the append-only JSON-lines log of finished items that makes a run
  resumable (each line flushed and synced, so a crash loses only the items in flight).
- `load_data_template` / `data_prompt_version`: templates in ``data/prompts/`` and their versions.

Example:
    >>> backend, params = make_chat_backend("openai:m@http://127.0.0.1:8000/v1")  # doctest: +SKIP
    >>> asker = ChatAsker(backend, retry=RetryPolicy(), ledger=Ledger())  # doctest: +SKIP
    >>> value, reason = await asker.ask(prompt, parse=parse, retry_prompt=again)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import IO, Any, TypeVar

from humanlm.errors import ConfigError
from humanlm.judge.backends import ChatBackend, LiteLLMBackend, OpenAIBackend, TransportError
from humanlm.judge.build import parse_spec
from humanlm.judge.ledger import Ledger
from humanlm.judge.limits import RateLimiter, RetryPolicy, backoff_delay

__all__ = [
    "ChatAsker",
    "append_log",
    "data_prompt_version",
    "load_data_template",
    "load_log",
    "make_chat_backend",
    "run_bounded",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Parse = Callable[[str], "tuple[Any | None, str]"]

_OUTPUT_GUESS = 800
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def make_chat_backend(
    spec: str,
    *,
    api_key_env: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    purpose: str = "persona",
) -> tuple[ChatBackend, dict[str, Any]]:
    """A chat backend for ``openai:MODEL[@URL]`` or ``litellm:PROVIDER/MODEL``, and its params.

    The key comes from ``api_key_env`` (default ``OPENAI_API_KEY`` for ``openai:``); a local
    server (127.0.0.1, localhost) needs none.

    Args:
        purpose: what the model is for (``persona``, ``trace``), named in error messages.

    Raises:
        ConfigError: a bad spec, an embedding spec, or a missing key.
    """
    parsed = parse_spec(spec)
    params: dict[str, Any] = {}
    if temperature is not None:
        params["temperature"] = temperature
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if parsed.kind == "embedding":
        raise ConfigError(
            f"{purpose} model {spec!r}: {purpose}s need a chat model (openai: or litellm:)"
        )
    if parsed.kind == "litellm":
        key = os.environ.get(api_key_env) if api_key_env else None
        return LiteLLMBackend(parsed.model, api_key=key, params=params), params
    env = api_key_env or "OPENAI_API_KEY"
    key = os.environ.get(env)
    if not key:
        host = re.sub(r"^https?://([^/:]+).*$", r"\1", parsed.base_url or "")
        if host not in _LOCAL_HOSTS:
            raise ConfigError(
                f"{purpose} model {parsed.display} needs an API key in ${env} (unset); export it "
                "or name another variable with --api-key-env"
            )
        key = "EMPTY"
    backend = OpenAIBackend(parsed.model, api_key=key, base_url=parsed.base_url, params=params)
    return backend, params


def _prompts_dir():  # noqa: ANN202 - importlib Traversable
    return resources.files("humanlm.data") / "prompts"


@cache
def load_data_template(name: str) -> str:
    """The text of ``data/prompts/<name>.md`` (trailing newlines removed)."""
    path = _prompts_dir() / f"{name}.md"
    if not path.is_file():
        raise ConfigError(f"no prompt template named {name!r} in humanlm/data/prompts/")
    return path.read_text(encoding="utf-8").rstrip("\n")


@cache
def data_prompt_version(name: str) -> str:
    """The version of template ``name``, from ``data/prompts/VERSIONS``."""
    for line in (_prompts_dir() / "VERSIONS").read_text("utf-8").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == name:
            return parts[1]
    raise ConfigError(f"data/prompts/VERSIONS lists no {name!r} template")


def load_log(path: str | Path, *, key: str) -> dict[str, dict[str, Any]]:
    """The finished items of a JSON-lines log: ``record[key]`` -> its last record.

    A line that does not parse (the tail of a run killed mid-write) is skipped with a warning.
    """
    log = Path(path)
    records: dict[str, dict[str, Any]] = {}
    if not log.is_file():
        return records
    with log.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                records[str(record[key])] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                logger.warning("%s line %d is incomplete; that item will be redone", log, number)
    return records


def append_log(log: IO[str], record: dict[str, Any]) -> None:
    """Append one record as a JSON line and push it to disk before the next item finishes."""
    log.write(json.dumps(record, ensure_ascii=False) + "\n")
    log.flush()
    os.fsync(log.fileno())


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


class ChatAsker:
    """One item's call: transport retries with backoff, content retries with feedback.

    Args:
        backend: the chat model.
        retry: transport retries, backoff and the overall deadline of one item.
        ledger: where calls, tokens and failed attempts are counted.
        limiter: requests/tokens per minute (``None``: unlimited).
        seed: seed of the backoff jitter.
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        retry: RetryPolicy,
        ledger: Ledger,
        limiter: RateLimiter | None = None,
        seed: int = 0,
    ):
        self.backend, self.retry, self.ledger = backend, retry, ledger
        self.limiter = limiter or RateLimiter()
        self._rng = random.Random(seed)

    async def ask(
        self,
        prompt: str,
        *,
        parse: Parse,
        retry_prompt: Callable[[str], str],
        content_retries: int,
    ) -> tuple[Any | None, str]:
        """Ask until ``parse`` accepts a reply or the retries or the deadline run out.

        Args:
            prompt: the user message.
            parse: reply text -> ``(value, "ok")`` or ``(None, problem)``.
            retry_prompt: problem -> the follow-up message that asks again.
            content_retries: re-asks after a reply that ``parse`` refused.

        Returns:
            ``(value, "ok")``, or ``(None, reason)``: ``invalid_reply (<problem>)``, ``timeout``
            or the transport failure kind.

        Raises:
            JudgeUnavailableError: the server refused the key or does not know the model.
        """
        messages = [{"role": "user", "content": prompt}]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry.timeout_s
        transport_failures = content_failures = 0
        while True:
            estimate = sum(len(m["content"]) for m in messages) // 4 + _OUTPUT_GUESS
            deadline += await self.limiter.acquire(estimate)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None, "timeout"
            retry_after = None
            started = loop.time()
            try:
                completion = await asyncio.wait_for(
                    self.backend.complete(
                        messages, timeout_s=min(self.retry.request_timeout_s, remaining)
                    ),
                    timeout=remaining,
                )
            except (asyncio.TimeoutError, TimeoutError):
                reason = "timeout"
                self.ledger.record_attempt_failure(reason)
            except TransportError as err:
                reason = err.kind
                self.ledger.record_attempt_failure(reason)
                if not err.is_retryable:
                    return None, reason
                retry_after = err.retry_after
            else:
                used = completion.input_tokens + completion.output_tokens
                self.limiter.settle(estimate, used or estimate)
                self.ledger.record_call(
                    latency_s=loop.time() - started,
                    input_tokens=completion.input_tokens,
                    output_tokens=completion.output_tokens,
                )
                value, problem = parse(completion.text)
                if value is not None:
                    return value, "ok"
                self.ledger.record_attempt_failure("invalid_reply", sent=False)
                content_failures += 1
                if content_failures > content_retries:
                    return None, f"invalid_reply ({problem})"
                messages = [
                    messages[0],
                    {"role": "assistant", "content": completion.text},
                    {"role": "user", "content": retry_prompt(problem)},
                ]
                continue
            transport_failures += 1
            if transport_failures > self.retry.max_retries:
                return None, reason
            delay = backoff_delay(
                transport_failures - 1, self.retry, retry_after=retry_after, rng=self._rng
            )
            if loop.time() + delay >= deadline:
                return None, reason
            await asyncio.sleep(delay)
