"""LLM persona calls: bounded, retried, logged and resumable, one per user.

One chat call per user through the judge package's backends (``openai:MODEL[@URL]`` or
``litellm:PROVIDER/MODEL``), at most ``concurrency`` in flight. Each reply is parsed and checked
against the persona schema; an unusable reply is sent back with the problem (content retries),
while 429s, 5xx, timeouts and dropped connections are retried with the shared `RetryPolicy`.

Finished users are appended to a JSON-lines log (``personas.jsonl``), flushed and synced one
user at a time; a new run skips every user whose log entry has the same request key (model,
sampling parameters, prompt version and prompt), so a crash loses only the users in flight.
The prompt and the reply check live in `humanlm.data.persona_prompt`.

Example:
    >>> outcome = asyncio.run(summarise_personas(requests, backend=b, log_path="personas.jsonl"))
    ... # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from humanlm.data.persona_prompt import (
    parse_persona_reply,
    persona_prompt_version,
    render_retry_prompt,
)
from humanlm.errors import ConfigError
from humanlm.judge.backends import ChatBackend, LiteLLMBackend, OpenAIBackend, TransportError
from humanlm.judge.build import parse_spec
from humanlm.judge.cache import JudgeCache, cache_key
from humanlm.judge.ledger import Ledger
from humanlm.judge.limits import RateLimiter, RetryPolicy, backoff_delay

__all__ = [
    "PersonaOutcome",
    "PersonaRequest",
    "load_persona_log",
    "make_chat_backend",
    "request_key",
    "summarise_personas",
]

logger = logging.getLogger(__name__)

_OUTPUT_GUESS = 800
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class PersonaRequest:
    """The persona call of one user: the prompt and the key that identifies its answer."""

    user_id: str
    prompt: str
    key: str


@dataclass
class PersonaOutcome:
    """What `summarise_personas` produced.

    Attributes:
        personas: user id -> persona JSON text (new and reused).
        failed: user id -> why no persona was made (after all retries).
        reused: users taken from the log or the cache without a call.
        generated: users summarised by a call in this run.
        ledger: calls, tokens, failed attempts and cost of this run.
    """

    personas: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    reused: int = 0
    generated: int = 0
    ledger: Ledger = field(default_factory=Ledger)


def make_chat_backend(
    spec: str,
    *,
    api_key_env: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> tuple[ChatBackend, dict[str, Any]]:
    """A chat backend for ``openai:MODEL[@URL]`` or ``litellm:PROVIDER/MODEL``, and its params.

    The key comes from ``api_key_env`` (default ``OPENAI_API_KEY`` for ``openai:``); a local
    server (127.0.0.1, localhost) needs none.

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
            f"persona model {spec!r}: personas need a chat model (openai: or litellm:)"
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
                f"persona model {parsed.display} needs an API key in ${env} (unset); export it "
                "or name another variable with --api-key-env"
            )
        key = "EMPTY"
    backend = OpenAIBackend(parsed.model, api_key=key, base_url=parsed.base_url, params=params)
    return backend, params


def request_key(backend: ChatBackend, params: Mapping[str, Any], prompt: str) -> str:
    """The key of one persona answer: model identity, parameters, prompt version and prompt."""
    return cache_key(
        {
            **backend.identity(),
            "params": dict(params),
            "prompt_version": persona_prompt_version(),
            "prompt": prompt,
        }
    )


def load_persona_log(path: str | Path) -> dict[str, dict[str, Any]]:
    """The finished users of a persona log: user id -> its last record.

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
                records[str(record["user_id"])] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                logger.warning("%s line %d is incomplete; that user will be redone", log, number)
    return records


async def summarise_personas(
    requests: Sequence[PersonaRequest],
    *,
    backend: ChatBackend,
    log_path: str | Path,
    concurrency: int = 8,
    retry: RetryPolicy | None = None,
    content_retries: int = 2,
    limiter: RateLimiter | None = None,
    cache: JudgeCache | None = None,
    seed: int = 0,
    show_progress: bool = False,
) -> PersonaOutcome:
    """Make a persona for every request, reusing finished ones from the log (and the cache).

    Args:
        requests: one per user.
        backend: the chat model.
        log_path: the JSON-lines log of finished users (appended to, one line per user).
        concurrency: calls in flight at once.
        retry: transport retries, backoff and the overall deadline per user.
        content_retries: re-asks after an invalid reply, per user.
        limiter: requests/tokens per minute (``None``: unlimited).
        cache: optional SQLite cache shared across output folders.
        seed: seed of the backoff jitter.
        show_progress: a tqdm bar over users.

    Raises:
        JudgeUnavailableError: the server refused the key or does not know the model; users
            finished so far stay in the log.
    """
    if concurrency < 1 or content_retries < 0:
        raise ConfigError("personas: need concurrency >= 1 and content retries >= 0")
    outcome = PersonaOutcome(ledger=Ledger(model=backend.model))
    done = load_persona_log(log_path)
    pending = []
    for request in requests:
        record = done.get(request.user_id)
        hit = cache.get(request.key) if cache is not None and record is None else None
        if record is not None and record.get("key") == request.key:
            outcome.personas[request.user_id] = record["persona"]
            outcome.reused += 1
        elif hit is not None:
            outcome.personas[request.user_id] = hit["persona"]
            outcome.reused += 1
        else:
            pending.append(request)
    logger.info("personas: %d reused, %d to summarise", outcome.reused, len(pending))
    if not pending:
        return outcome
    asker = _Asker(backend, retry or RetryPolicy(), limiter or RateLimiter(), outcome.ledger, seed)
    queue: asyncio.Queue[PersonaRequest] = asyncio.Queue()
    for request in pending:
        queue.put_nowait(request)
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with (
        open(log_path, "a", encoding="utf-8") as log,
        tqdm(total=len(pending), desc="personas", unit="user", disable=not show_progress) as bar,
    ):

        async def worker() -> None:
            while not queue.empty():
                request = queue.get_nowait()
                persona, reason = await asker.ask(request.prompt, content_retries)
                if persona is None:
                    outcome.failed[request.user_id] = reason
                    logger.warning("persona of user %s failed: %s", request.user_id, reason)
                else:
                    text = json.dumps(persona, ensure_ascii=False)
                    _append(log, request, text, backend.model)
                    if cache is not None:
                        cache.put(request.key, {"persona": text})
                    outcome.personas[request.user_id] = text
                    outcome.generated += 1
                bar.update(1)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(pending)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await backend.aclose()
    return outcome


def _append(log: Any, request: PersonaRequest, persona: str, model: str) -> None:
    record = {
        "user_id": request.user_id,
        "key": request.key,
        "model": model,
        "prompt_version": persona_prompt_version(),
        "persona": persona,
    }
    log.write(json.dumps(record, ensure_ascii=False) + "\n")
    log.flush()
    os.fsync(log.fileno())


class _Asker:
    """One user's call: transport retries with backoff, content retries with feedback."""

    def __init__(
        self,
        backend: ChatBackend,
        retry: RetryPolicy,
        limiter: RateLimiter,
        ledger: Ledger,
        seed: int,
    ):
        self.backend, self.retry, self.limiter, self.ledger = backend, retry, limiter, ledger
        self._rng = random.Random(seed)

    async def ask(self, prompt: str, content_retries: int) -> tuple[dict[str, Any] | None, str]:
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
                persona, problem = parse_persona_reply(completion.text)
                if persona is not None:
                    return persona, "ok"
                self.ledger.record_attempt_failure("invalid_reply", sent=False)
                content_failures += 1
                if content_failures > content_retries:
                    return None, f"invalid_reply ({problem})"
                correction = render_retry_prompt(problem)
                messages = [
                    messages[0],
                    {"role": "assistant", "content": completion.text},
                    {"role": "user", "content": correction},
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
