"""``check_judge``: one small judgement before training, so a judge whose server refuses the
request stops the run before its first step.

A server that refuses the request itself (HTTP 4xx: a field the model does not take, a value it
does not allow) refuses every request alike: every rollout of every step would be unscored. TRL's
unscored guard would stop only after the first step, and on verl each reward would be a fill. One
judgement of a small made-up group, sent as the reward sends its own (same fields, the same
structured output, no cache), finds it first. Failures that a retry may heal (timeouts, 429, 5xx)
and replies that do not parse come back as the unscored verdict: the training preflight
(``humanlm.train.preflight``) fails on a judge that could not be reached at all, and the guards
watch the steps for the rest. Judges that send no request (``embedding:minilm``) are not asked.

Example:
    >>> check_judge(build_judge(cfg.judge))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging

from humanlm.errors import JudgeUnavailableError
from humanlm.judge.build import Judge
from humanlm.judge.client import LLMJudge
from humanlm.judge.verdict import GroupVerdict

__all__ = ["acheck_judge", "check_judge"]

logger = logging.getLogger(__name__)

_CONTEXT = [
    {"name": "OP", "content": "My landlord kept my deposit over a scuff on the wall. Fair?"},
]
_TRUTH = "Not fair at all. A scuff is normal wear and tear; ask for it back in writing."
_CANDIDATES = ["disagrees with the landlord", "sides with the landlord"]


async def acheck_judge(judge: Judge) -> GroupVerdict | None:
    """Ask ``judge`` for one small judgement (``None``: a judge that sends no request).

    Raises:
        JudgeUnavailableError: the server refused the request (naming its own reason), the key
            or the model.
    """
    if not isinstance(judge, LLMJudge):
        return None
    verdict = await judge.judge_group(
        context=_CONTEXT,
        ground_truth=_TRUTH,
        state="stance",
        candidates=_CANDIDATES,
        use_cache=False,
    )
    if verdict.reason == "rejected":
        said = judge.ledger.last_refusal or "no reason given"
        raise JudgeUnavailableError(
            f"judge {judge.name} refused the first judge request before training ({said}); "
            "no step was run: change the judge settings (spec, temperature, max_tokens) and "
            "start again"
        )
    if verdict.is_scored:
        logger.info("judge %s answered the first request", judge.name)
    else:
        logger.warning(
            "judge %s: the first request went unscored (%s); training starts, and stops if the "
            "judge leaves too much of a step unscored",
            judge.name,
            verdict.reason,
        )
    return verdict


def check_judge(judge: Judge) -> GroupVerdict | None:
    """``acheck_judge`` on an event loop of its own, the judge's connections closed after it."""

    async def checked() -> GroupVerdict | None:
        try:
            return await acheck_judge(judge)
        finally:
            await judge.aclose()

    return asyncio.run(checked())
