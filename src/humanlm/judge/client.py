"""The LLM judge: one bounded, retried, cached chat call per (example, state) group.

``LLMJudge`` turns a group of candidates into a prompt (``judge.prompt``), asks the chat model
through the LLM layer (``humanlm.llm.ChatClient``: concurrency limit, RPM/TPM limiter, overall
deadline, transport and content retries) and reads the answer by candidate number
(``judge.parse``). After the retries a group is unscored with a reason: it never hangs and never
becomes 0. Where the Chat gate applies (``chat_gate`` and the group's data source), the same
call also asks whose voice each candidate is written in (``humanlm.judge.group``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from humanlm.judge.group import finish_group, gate_applies, plan_group
from humanlm.judge.parse import ParsedReply, parse_aspects_reply, parse_group_reply
from humanlm.judge.prompt import (
    aspects_prompt_version,
    build_aspects_prompt,
    build_group_prompt,
    group_prompt_version,
)
from humanlm.judge.verdict import AspectVerdict, GroupVerdict, Verdict
from humanlm.llm.backends import ChatBackend
from humanlm.llm.cache import LLMCache, cache_key
from humanlm.llm.client import ChatClient
from humanlm.llm.ledger import Ledger
from humanlm.llm.limits import RateLimiter, RetryPolicy
from humanlm.states import LATENT_STATES

__all__ = ["LLMJudge"]

logger = logging.getLogger(__name__)

# Output-size guess for the TPM limiter before the server reports real usage.
_OUTPUT_GUESS = 400
# Structured output: a JSON object; the prompt names its fields.
_JSON_OBJECT = {"response_format": {"type": "json_object"}}
# Transport failure kinds as verdict reasons.
_TRANSPORT = {"timeout": "timeout", "rejected": "rejected"}
# Reasons of a reply that came but could not be read: the verdict keeps the reader's detail.
_UNREADABLE = ("empty", "parse_failure", "wrong_count", "off_scale")
_DETAIL_CHARS = 200


class _Outcome(NamedTuple):
    """The end of one ``_ask``: a parsed reply or a failure reason, plus what was seen."""

    reason: str
    parsed: ParsedReply | None
    raw: str | None
    calls: int
    cached: bool = False
    detail: str | None = None  # the server's message for a refused request, or the parser's


class LLMJudge:
    """A ``Judge`` backed by a chat model.

    Args:
        backend: the chat API.
        name: the judge spec shown in results (``openai:gpt-5-mini``).
        concurrency: judge calls in flight at once.
        retry: attempts, backoff and deadlines.
        limiter: requests/tokens per minute (``None``: unlimited).
        cache: on-disk cache of successful judgements (``None``: off).
        ledger: where calls, tokens and failures are counted.
        params: sampling parameters sent with every request (part of the cache key).
        seed: seed of the backoff jitter.
        structured: ask for a JSON object (``response_format``); a server that refuses the
            request (HTTP 400) without naming another field is asked again without it, and from
            then on the reply is read by the tolerant extractor alone.
        chat_gate: ``auto``, ``on`` or ``off``: where the Chat gate applies (``gates``).
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        name: str,
        concurrency: int,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        cache: LLMCache | None = None,
        ledger: Ledger | None = None,
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
        structured: bool = False,
        chat_gate: str = "auto",
    ):
        gate_applies(chat_gate, None)  # refuses an unknown setting here, not at the first call
        self.chat_gate = chat_gate
        self.backend = backend
        self.name = name
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter()
        self.cache = cache
        self.ledger = ledger if ledger is not None else Ledger(model=backend.model)
        self.params = dict(params or {})
        self.structured = structured
        self.client = ChatClient(
            backend,
            name=name,
            retry=self.retry,
            limiter=self.limiter,
            ledger=self.ledger,
            concurrency=concurrency,
            output_guess=_OUTPUT_GUESS,
            seed=seed,
        )

    def __repr__(self) -> str:
        return f"LLMJudge(name={self.name!r}, concurrency={self.concurrency}, cache={self.cache!r})"

    @property
    def prompt_version(self) -> str:
        return group_prompt_version()

    def gates(self, source: str | None) -> bool:
        """Whether groups from data source ``source`` go through the Chat gate."""
        return gate_applies(self.chat_gate, source)

    async def judge_group(
        self,
        *,
        context: Sequence[Mapping[str, object]],
        ground_truth: str,
        state: str,
        candidates: Sequence[str | None],
        use_cache: bool = True,
        source: str | None = None,
    ) -> GroupVerdict:
        """Score the candidates of one (example, state) group in at most one judgement.

        Args:
            context: rendered context messages (``{name, content}`` dicts).
            ground_truth: the real reply.
            state: one of the seven state names.
            candidates: extracted state texts; ``""`` or ``None`` score 0 (``bad_format``).
            use_cache: read and write the on-disk cache (when the judge has one).
            source: the example's data source (``wildchat``, ...): decides the Chat gate.

        Returns:
            A ``GroupVerdict`` with one verdict per candidate, in the given order.
        """
        gate = self.gates(source)
        version = group_prompt_version(gate=gate)
        plan = plan_group(candidates, ground_truth, state=state)
        self.ledger.groups += 1
        if not plan.unique:
            self.ledger.no_call += 1
            return finish_group(
                plan, scores=None, failure=None, judge_model=self.name, prompt_version=version
            )
        prompt = build_group_prompt(
            context=context,
            ground_truth=ground_truth,
            state=state,
            candidates=plan.unique,
            gate=gate,
        )
        count = len(plan.unique)
        outcome = await self._ask(
            prompt,
            version,
            lambda text: parse_group_reply(text, count, gate=gate),
            use_cache=use_cache,
        )
        parsed = outcome.parsed
        keys = [str(i) for i in range(1, count + 1)]
        voices = [parsed.assistant_voice[k] for k in keys] if parsed and gate else []
        return finish_group(
            plan,
            scores=[parsed.scores[k] for k in keys] if parsed else None,
            failure=None if parsed else outcome.reason,
            judge_model=self.name,
            prompt_version=version,
            thoughts=[parsed.thoughts.get(k) for k in keys] if parsed else (),
            key_points=parsed.key_points if parsed else (),
            prompt=prompt,
            raw=outcome.raw,
            cached=outcome.cached,
            calls=outcome.calls,
            assistant_voice=voices,
            detail=_reader_detail(outcome),
        )

    async def judge_aspects(
        self,
        *,
        context: Sequence[Mapping[str, object]],
        ground_truth: str,
        response: str | None,
        states: Sequence[str] = LATENT_STATES,
        use_cache: bool = True,
    ) -> AspectVerdict:
        """Score one response on every state of ``states`` in one call.

        An empty response scores 0 on every state (``bad_format``) and an exact copy of the real
        reply 1 (``exact_copy``), both without a call.
        """
        version = aspects_prompt_version()
        self.ledger.groups += 1
        text = (response or "").strip()
        quick = _quick_aspects(text, ground_truth, states, self.name, version)
        if quick is not None:
            self.ledger.no_call += 1
            return quick
        prompt = build_aspects_prompt(
            context=context, ground_truth=ground_truth, response=text, states=states
        )
        outcome = await self._ask(
            prompt, version, lambda t: parse_aspects_reply(t, states), use_cache=use_cache
        )
        parsed = outcome.parsed
        verdicts = {
            s: Verdict(
                score=parsed.scores[s] if parsed else None,
                reason="ok" if parsed else outcome.reason,
                judge_model=self.name,
                prompt_version=version,
                thought=parsed.thoughts.get(s) if parsed else None,
                prompt=prompt,
                raw=outcome.raw,
            )
            for s in states
        }
        reason = "ok" if parsed else outcome.reason
        return AspectVerdict(
            verdicts,
            reason,
            cached=outcome.cached,
            calls=outcome.calls,
            detail=_reader_detail(outcome),
        )

    async def ask(
        self,
        prompt: str,
        *,
        version: str,
        parse: Callable[[str], ParsedReply],
        use_cache: bool = True,
    ) -> _Outcome:
        """A judgement of another kind (``parse`` reads it) with this judge's cache and ledger.

        Args:
            prompt: the whole prompt.
            version: its prompt version (part of the cache key).
            parse: reply text -> ``ParsedReply`` (``reason`` ``ok`` or a problem).
            use_cache: read and write the cache.
        """
        return await self._ask(prompt, version, parse, use_cache=use_cache)

    async def aclose(self) -> None:
        """Release the backend's connections for the running event loop."""
        await self.backend.aclose()

    def _key(self, prompt: str, version: str) -> str:
        return cache_key(
            {
                **self.backend.identity(),
                "params": self.params,
                "prompt_version": version,
                "prompt": prompt,
            }
        )

    async def _ask(
        self,
        prompt: str,
        version: str,
        parse: Callable[[str], ParsedReply],
        *,
        use_cache: bool,
    ) -> _Outcome:
        cache = self.cache if use_cache else None
        key = self._key(prompt, version) if cache is not None else ""
        if cache is not None and (hit := _from_cache(cache, key)) is not None:
            self.ledger.cache_hits += 1
            return hit
        outcome = await self._attempts(prompt, parse)
        if outcome.parsed is None:
            self.ledger.record_unscored(outcome.reason)
            why = f"{outcome.reason}: {outcome.detail}" if outcome.detail else outcome.reason
            logger.warning("judge %s: call unscored (%s)", self.name, why)
        elif cache is not None:
            cache.put(key, {**outcome.parsed.to_dict(), "raw": outcome.raw})
        return outcome

    async def _attempts(self, prompt: str, parse: Callable[[str], ParsedReply]) -> _Outcome:
        """Ask through the LLM layer until a reply parses, the retries or the deadline run out."""

        refused: list[str | None] = [None]  # what made the latest refused reply unreadable

        def accept(text: str) -> tuple[ParsedReply | None, str]:
            parsed = parse(text)
            refused[0] = parsed.detail
            return (parsed, "ok") if parsed.reason == "ok" else (None, parsed.reason)

        messages = [{"role": "user", "content": prompt}]
        if self.structured:
            answer = await self.client.ask(messages, parse=accept, params=_JSON_OBJECT)
            if (
                answer.reason == "rejected"
                and not answer.content_failure
                and getattr(answer.error, "param", None) in (None, "response_format")
            ):
                logger.warning("judge %s refuses response_format; asking without it", self.name)
                self.structured = False
        if not self.structured:
            answer = await self.client.ask(messages, parse=accept)
        if answer.ok:
            return _Outcome("ok", answer.value, answer.raw, answer.calls)
        reason = answer.reason if answer.content_failure else _TRANSPORT.get(answer.reason)
        detail = answer.error.detail if answer.error is not None else None
        if answer.content_failure:
            detail = refused[0]
        return _Outcome(reason or "transport_error", None, answer.raw, answer.calls, detail=detail)


def _reader_detail(outcome: _Outcome) -> str | None:
    """What the reader found wrong with an unreadable reply, cut short; ``None`` otherwise (a
    server's own error message is logged, never kept in a verdict)."""
    if outcome.parsed is not None or outcome.reason not in _UNREADABLE or not outcome.detail:
        return None
    detail = outcome.detail
    return detail if len(detail) <= _DETAIL_CHARS else detail[:_DETAIL_CHARS] + "..."


def _from_cache(cache: LLMCache, key: str) -> _Outcome | None:
    """A cached judgement, or ``None`` for a miss or an entry this version cannot read."""
    entry = cache.get(key)
    if entry is None:
        return None
    try:
        return _Outcome("ok", ParsedReply.from_dict(entry), entry.get("raw"), 0, cached=True)
    except (KeyError, TypeError, ValueError, AttributeError):
        logger.warning("judge cache %s: unreadable entry %s; judging again", cache.path, key[:12])
        return None


def _quick_aspects(
    response: str, ground_truth: str, states: Sequence[str], name: str, version: str
) -> AspectVerdict | None:
    """The aspects verdict of an empty response or an exact copy, or ``None`` if a call is needed."""
    if response and " ".join(response.split()) != " ".join(ground_truth.split()):
        return None
    score, reason = (1.0, "exact_copy") if response else (0.0, "bad_format")
    verdicts = {s: Verdict(score, reason, name, version) for s in states}
    return AspectVerdict(verdicts, reason)
