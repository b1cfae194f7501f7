"""LLM persona calls: bounded, retried, logged and resumable, one per user.

One chat call per user through the LLM layer (``humanlm.llm``: ``openai:MODEL[@URL]`` or
``litellm:PROVIDER/MODEL``), at most ``concurrency`` in flight. Each reply is parsed and checked
against the persona schema; an unusable reply is sent back with the problem (content retries),
while 429s, 5xx, timeouts and dropped connections are retried with the shared `RetryPolicy`.

Finished users are appended to a JSON-lines log (``personas.jsonl``), flushed and synced one
user at a time; a new run skips every user whose log entry has the same request key (model,
sampling parameters, prompt version and prompt), so a crash loses only the users in flight.
The prompt and the reply check live in `humanlm.enrich.persona_prompt`; the retried call is
`humanlm.llm.ask_item` and the log helpers are in `humanlm.files` (shared with the traces).

Example:
    >>> outcome = asyncio.run(summarise_personas(requests, backend=b, log_path="personas.jsonl"))
    ... # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from humanlm.enrich.persona_prompt import (
    parse_persona_reply,
    persona_prompt_version,
    render_retry_prompt,
)
from humanlm.errors import ConfigError
from humanlm.files import append_jsonl, read_jsonl
from humanlm.llm.backends import ChatBackend
from humanlm.llm.cache import LLMCache, cache_key
from humanlm.llm.client import ChatClient, ask_item, run_bounded
from humanlm.llm.ledger import Ledger
from humanlm.llm.limits import RateLimiter, RetryPolicy

__all__ = [
    "PersonaOutcome",
    "PersonaRequest",
    "load_persona_log",
    "request_key",
    "summarise_personas",
]

logger = logging.getLogger(__name__)

_OUTPUT_GUESS = 800  # tokens of a persona reply, for the TPM limiter before usage is known


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
    return {str(r["user_id"]): r for r in read_jsonl(path) if "user_id" in r}


async def summarise_personas(
    requests: Sequence[PersonaRequest],
    *,
    backend: ChatBackend,
    log_path: str | Path,
    concurrency: int = 8,
    retry: RetryPolicy | None = None,
    content_retries: int = 2,
    limiter: RateLimiter | None = None,
    cache: LLMCache | None = None,
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
    client = ChatClient(
        backend,
        name=backend.model,
        retry=retry or RetryPolicy(),
        ledger=outcome.ledger,
        limiter=limiter,
        output_guess=_OUTPUT_GUESS,
        seed=seed,
    )
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with (
        open(log_path, "a", encoding="utf-8") as log,
        tqdm(total=len(pending), desc="personas", unit="user", disable=not show_progress) as bar,
    ):

        async def handle(request: PersonaRequest) -> None:
            persona, reason = await ask_item(
                client,
                request.prompt,
                parse=parse_persona_reply,
                follow_up=render_retry_prompt,
                content_retries=content_retries,
            )
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

        try:
            await run_bounded(pending, handle, concurrency=concurrency)
        finally:
            await backend.aclose()
    return outcome


def _append(log: IO[str], request: PersonaRequest, persona: str, model: str) -> None:
    record = {
        "user_id": request.user_id,
        "key": request.key,
        "model": model,
        "prompt_version": persona_prompt_version(),
        "persona": persona,
    }
    append_jsonl(log, record)
